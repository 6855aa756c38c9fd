import Foundation
import Testing
@testable import Ply

/// The Swift result-builder API builds the same plugin layers as the zoo.
@Suite struct SwiftAPITests {
    @Test func sequentialConvNetEqualsTheZooConvNet() throws {
        let built = try Model.sequential(runtime: sharedRuntime) {
            Conv2d(1, 8, kernel: 3, padding: 1).named("conv_1")
            ReLU()
            MaxPool2d(2)
            Conv2d(8, 16, kernel: 3, padding: 1).named("conv_2")
            ReLU()
            MaxPool2d(2)
            Flatten()
            Linear(16 * 7 * 7, 10).named("linear_1")
        }
        let zoo = try Zoo.convNet(runtime: sharedRuntime)
        #expect(try built.namedParameters().map(\.name) == zoo.namedParameters().map(\.name))
        // Same weights in, same logits out.
        try hashInitialize(built)
        try hashInitialize(zoo)
        built.isTraining = false
        zoo.isTraining = false
        let x = hashInput([2, 1, 28, 28])
        #expect(try built.forward(x) == zoo.forward(x))
    }

    @Test func unnamedLayersAreNumberedLikeSequential() throws {
        let m = try Model.sequential(runtime: sharedRuntime) {
            Conv2d(3, 4, kernel: (1, 7), padding: (0, 3), bias: false)
            BatchNorm2d(4)
            ReLU()
            AdaptiveAvgPool2d(1)
            Flatten()
            Dropout(0.2)
            Linear(4, 2)
            Softmax(dim: 1, log: true)
        }
        #expect(try m.namedParameters().map(\.name) == [
            "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
            "6.weight", "6.bias",
        ])
        #expect(try m.shapes(for: [2, 3, 9, 9]).last == [2, 2])
    }

    @Test func conditionalAndLoopedLayers() throws {
        let deep = true
        let m = try Model.sequential(runtime: sharedRuntime) {
            for _ in 0..<3 { Tanh() }
            if deep { Sigmoid() } else { ReLU() }
            AnyLayer("avgpool2d", [("kernel_size", .int(2))])
        }
        #expect(m.nodes.count == 6)
        #expect(m.nodes[4].layer?.type.name == "sigmoid")
    }
}
