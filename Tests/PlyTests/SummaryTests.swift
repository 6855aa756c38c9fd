import Foundation
import Testing
@testable import Ply

/// `ModelSummary`: PyTorch's printed module tree, torchvision's parameter counts and
/// published MACs, and the tutorial's receptive fields.
@Suite(.serialized) struct SummaryTests {
    static func summary(_ name: String, classes: Int = 10, channels: Int = 1, size: Int = 28,
                        _ parameters: [String: AttributeValue] = [:]) throws -> ModelSummary {
        let m = try Zoo.model(named: name, runtime: sharedRuntime, numClasses: classes, inChannels: channels, imageSize: size,
                              parameters: parameters)
        let className = ModelSummary.className(forModelNamed: try Zoo.modelFile(named: name).file.name)
        return try ModelSummary(model: m, inputShape: [1, channels, size, size], className: className)
    }

    static func imagenet(_ name: String) throws -> ModelSummary { try summary(name, classes: 1000, channels: 3, size: 224) }

    /// The zoo's ConvNet as its file writes it (pools with kernel_size: 2, so PyTorch would print `2`).
    @Test func convNetTree() throws {
        let s = try Self.summary("convnet")
        #expect(s.tree == """
            ConvNet(
              (conv_1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (relu_1): ReLU()
              (pool_1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
              (conv_2): Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (relu_2): ReLU()
              (pool_2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
              (flatten): Flatten(start_dim=1, end_dim=-1)
              (linear_1): Linear(in_features=784, out_features=10, bias=True)
            )
            """)
    }

    /// The tutorial writes its pools with tuples (`MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0)`)
    /// and applies ReLU functionally (and flattens with .view): with the same attributes our
    /// tree is the tutorial's print plus the relu/flatten modules our graph has.
    @Test func tutorialConvNetTree() throws {
        let text = Zoo.convNetText.replacingOccurrences(of: "kernel_size: 2, stride: 2", with: "kernel_size: [2, 2], stride: [2, 2]")
        let m = try Zoo.model(text: text, runtime: sharedRuntime)
        let s = try ModelSummary(model: m, inputShape: [1, 1, 28, 28], className: "ConvNet")
        let tutorial = """
            ConvNet(
              (conv_1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (pool_1): MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)
              (conv_2): Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (pool_2): MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, ceil_mode=False)
              (linear_1): Linear(in_features=784, out_features=10, bias=True)
            )
            """
        let ours = s.tree.split(separator: "\n").filter { !$0.contains("(relu_") && !$0.contains("(flatten)") }.joined(separator: "\n")
        #expect(ours == tutorial)
    }

    /// torchvision's `print(resnet18())`, except that torchvision's ReLU is in place (ours is not:
    /// `ReLU()`), its avgpool is built with (1, 1) where our model file writes 1, and our graph
    /// has a flatten module where torchvision calls torch.flatten.
    @Test func resNet18Tree() throws {
        let s = try Self.imagenet("resnet18")
        let torchvision = """
            ResNet(
              (conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
              (bn1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
              (relu): ReLU(inplace=True)
              (maxpool): MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)
              (layer1): Sequential(
                (0): BasicBlock(
                  (conv1): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (relu): ReLU(inplace=True)
                  (conv2): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn2): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                )
                (1): BasicBlock(
                  (conv1): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (relu): ReLU(inplace=True)
                  (conv2): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn2): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                )
              )
              (layer2): Sequential(
                (0): BasicBlock(
                  (conv1): Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)
                  (bn1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (relu): ReLU(inplace=True)
                  (conv2): Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn2): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (downsample): Sequential(
                    (0): Conv2d(64, 128, kernel_size=(1, 1), stride=(2, 2), bias=False)
                    (1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  )
                )
            """.replacingOccurrences(of: "ReLU(inplace=True)", with: "ReLU()")
        #expect(s.tree.hasPrefix(torchvision + "\n"), "\(s.tree.prefix(3000))")
        #expect(s.tree.hasSuffix("""
              (avgpool): AdaptiveAvgPool2d(output_size=1)
              (flatten): Flatten(start_dim=1, end_dim=-1)
              (fc): Linear(in_features=512, out_features=1000, bias=True)
            )
            """))
        // root, 4 stem modules, 4 stages of 2 seven-line blocks, 3 four-line downsamples, 3 head modules, ")".
        #expect(s.tree.split(separator: "\n").count == 1 + 4 + 4 * (1 + 2 * 7 + 1) + 3 * 4 + 3 + 1)
    }

    @Test func bottleneckAndInceptionBlocks() throws {
        let r50 = try Self.imagenet("resnet50")
        #expect(r50.tree.contains("""
              (layer1): Sequential(
                (0): Bottleneck(
                  (conv1): Conv2d(64, 64, kernel_size=(1, 1), stride=(1, 1), bias=False)
                  (bn1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (conv2): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                  (bn2): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (conv3): Conv2d(64, 256, kernel_size=(1, 1), stride=(1, 1), bias=False)
                  (bn3): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  (relu): ReLU()
                  (downsample): Sequential(
                    (0): Conv2d(64, 256, kernel_size=(1, 1), stride=(1, 1), bias=False)
                    (1): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
                  )
                )
            """))
        // torchvision's print(googlenet()): BasicConv2d applies its ReLU functionally, so it has no relu child.
        let g = try Self.imagenet("googlenet")
        #expect(g.tree.hasPrefix("""
            GoogLeNet(
              (conv1): BasicConv2d(
                (conv): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
                (bn): BatchNorm2d(64, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
              )
              (maxpool1): MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=True)
            """))
        #expect(g.tree.contains("""
              (inception3a): Inception(
                (branch1): BasicConv2d(
                  (conv): Conv2d(192, 64, kernel_size=(1, 1), stride=(1, 1), bias=False)
                  (bn): BatchNorm2d(64, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                )
                (branch2): Sequential(
                  (0): BasicConv2d(
                    (conv): Conv2d(192, 96, kernel_size=(1, 1), stride=(1, 1), bias=False)
                    (bn): BatchNorm2d(96, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                  )
                  (1): BasicConv2d(
                    (conv): Conv2d(96, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                    (bn): BatchNorm2d(128, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                  )
                )
                (branch3): Sequential(
                  (0): BasicConv2d(
                    (conv): Conv2d(192, 16, kernel_size=(1, 1), stride=(1, 1), bias=False)
                    (bn): BatchNorm2d(16, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                  )
                  (1): BasicConv2d(
                    (conv): Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
                    (bn): BatchNorm2d(32, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                  )
                )
                (branch4): Sequential(
                  (0): MaxPool2d(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=True)
                  (1): BasicConv2d(
                    (conv): Conv2d(192, 32, kernel_size=(1, 1), stride=(1, 1), bias=False)
                    (bn): BatchNorm2d(32, eps=0.001, momentum=0.1, affine=True, track_running_stats=True)
                  )
                )
              )
            """))
        #expect(g.tree.contains("  (dropout): Dropout(p=0.2, inplace=False)\n  (fc): Linear(in_features=1024, out_features=1000, bias=True)\n)"))
    }

    /// Every block type in the zoo (GoogLeNet and Inception v3 with their auxiliary classifiers
    /// too) expands: the block's parameter names are the ones its template implies, and the
    /// rows add up. (resnet34/101/152 repeat resnet18's and resnet50's blocks; VGG has none.)
    @Test(arguments: ["convnet", "lenet5", "alexnet", "googlenet", "inception_v3", "resnet18", "resnet50"])
    func everyBlockExpands(_ name: String) throws {
        var variants: [[String: AttributeValue]] = [[:]]
        if name == "googlenet" || name == "inception_v3" { variants.append(["aux_logits": .bool(true)]) }
        for p in variants {
            let size = name == "inception_v3" && !p.isEmpty ? 299 : 28
            let m = try Zoo.model(named: name, runtime: sharedRuntime, inChannels: 1, imageSize: size, parameters: p)
            let s = try ModelSummary(model: m, inputShape: [2, 1, size, size])
            #expect(s.unexpandedBlocks.isEmpty, "\(name) \(p)")
            #expect(s.trainableParameters == (try ZooTests.trainable(m)), "\(name) \(p)")
            #expect(s.rows.reduce(0) { $0 + $1.parameters } == s.trainableParameters)
            #expect(s.rows.count == m.nodes.count - 1)
            #expect(s.outputShape == [2, 10])
            #expect(!s.tree.contains("residual_") && !s.tree.contains("inception_") && !s.tree.contains("basic_conv2d"), "\(name)")
        }
    }

    /// ModelSummary's totals equal torchvision's parameter counts.
    @Test(arguments: [
        ("convnet", 9_098), ("lenet5", 61_706), ("alexnet", 61_100_840), ("resnet18", 11_689_512),
        ("googlenet", 6_624_904), ("vgg11", 132_863_336),
    ])
    func parameterCounts(_ name: String, _ expected: Int) throws {
        let s = ["convnet", "lenet5"].contains(name) ? try Self.summary(name, size: name == "lenet5" ? 32 : 28) : try Self.imagenet(name)
        #expect(s.trainableParameters == expected)
        #expect(s.totalParameters == expected)
        #expect(s.nonTrainableParameters == 0)
        #expect(s.description.contains("Trainable params: \(ModelSummary.grouped(expected))"))
    }

    /// MACs (conv and linear multiply-accumulates) against the published figures, within 1%:
    /// resnet18 1.814 G (fvcore, torchvision's 1.81 GFLOPS), alexnet 0.714 G, vgg16 15.47 G.
    @Test(arguments: [("resnet18", 1.814e9), ("alexnet", 0.714e9), ("vgg16", 15.47e9)])
    func macs(_ name: String, _ published: Double) throws {
        let s = try Self.imagenet(name)
        #expect(abs(Double(s.totalMACs) - published) <= 0.01 * published, "\(name): \(s.totalMACs)")
    }

    @Test func exactMACsAndBatch() throws {
        let s = try Self.summary("convnet")
        // conv_1: 28·28·8 outputs × 1·3·3; conv_2: 14·14·16 × 8·3·3; linear_1: 10 × 784.
        #expect(s.rows.map(\.macs) == [56_448, 0, 0, 225_792, 0, 0, 0, 7_840])
        #expect(s.totalMACs == 290_080)
        let m = try Zoo.model(named: "convnet", runtime: sharedRuntime)
        let batch = try ModelSummary(model: m, inputShape: [8, 1, 28, 28])
        #expect(batch.totalMACs == 8 * 290_080)
        #expect(batch.outputShape == [8, 10])
        let r = try Self.imagenet("resnet18")
        // A BasicBlock without downsample: two 3×3 convs, 56·56·64 outputs × 64·9 each.
        #expect(r.rows.first { $0.name == "layer1.0" }?.macs == 2 * 56 * 56 * 64 * 64 * 9)
        // With downsample: conv1 stride 2, conv2, and the 1×1 shortcut.
        #expect(r.rows.first { $0.name == "layer2.0" }?.macs == 28 * 28 * 128 * (64 * 9 + 128 * 9 + 64))
    }

    /// The tutorial's §1.1: jump_out = jump_in·stride, rf_out = rf_in + (k − 1)·jump_in.
    @Test func convNetReceptiveFields() throws {
        let s = try Self.summary("convnet")
        func row(_ n: String) -> ModelSummary.Row? { s.rows.first { $0.name == n } }
        let expected: [(String, Double, Double)] = [("conv_1", 3, 1), ("relu_1", 3, 1), ("pool_1", 4, 2), ("conv_2", 8, 2),
                                                    ("pool_2", 10, 4), ("flatten", 10, 4), ("linear_1", 10 + 6 * 4, 28)]
        for (n, rf, jump) in expected {
            #expect(row(n)?.receptiveField == ModelSummary.Extent(rf, rf), "\(n)")
            #expect(row(n)?.jump == ModelSummary.Extent(jump, jump), "\(n)")
        }
    }

    /// Blocks compose their branches and take the longest; resnet18's well-known 435 at layer4.
    @Test func blockReceptiveFields() throws {
        let r = try Self.imagenet("resnet18")
        func rf(_ n: String) -> Double? { r.rows.first { $0.name == n }?.receptiveField.height }
        #expect(rf("conv1") == 7 && rf("maxpool") == 11)
        #expect(rf("layer1.0") == Double(11 + 2 * 4 + 2 * 4))            // two 3×3 convs at jump 4
        #expect(rf("layer2.0") == Double(43 + 2 * 4 + 2 * 8))            // conv1 stride 2 at jump 4, conv2 at jump 8
        #expect(rf("layer4.1") == 435)
        #expect(r.rows.first { $0.name == "layer4.1" }?.jump == ModelSummary.Extent(32, 32))
        // Inception v3's 1×7 / 7×1 convs: the field is the maximum over branches on each axis.
        let v3 = try Self.summary("inception_v3", classes: 1000, channels: 3, size: 299)
        let c = try #require(v3.rows.first { $0.name == "Mixed_6b" })
        // branch7x7dbl alternates 7×1 and 1×7: two 7-long kernels per axis at jump 16.
        #expect(c.receptiveField == ModelSummary.Extent(159 + 2 * 6 * 16, 159 + 2 * 6 * 16))
    }

    @Test func formats() {
        #expect(PyRepr.float(1e-5) == "1e-05" && PyRepr.float(0.001) == "0.001" && PyRepr.float(0.5) == "0.5" && PyRepr.float(1) == "1.0")
        #expect(PyRepr.value(.ints([3])) == "(3,)" && PyRepr.value(.string("same")) == "'same'" && PyRepr.value(.bool(true)) == "True")
        #expect(ModelSummary.Extent(3, 3).description == "3" && ModelSummary.Extent(7, 3).description == "7x3")
        #expect(ModelSummary.Extent(0.4444, 0.4444).description == "0.44")
        #expect(ModelSummary.grouped(1_234_567) == "1,234,567" && ModelSummary.grouped(12) == "12")
        #expect(ModelSummary.className(forModelNamed: "resnet") == "ResNet")
        #expect(ModelSummary.className(forModelNamed: "inception_v3") == "Inception3")
        #expect(ModelSummary.className(forModelNamed: "my_tiny-net") == "MyTinyNet")
        #expect(PyRepr.leaf(type: "conv2d", attributes: [("in_channels", .int(4)), ("out_channels", .int(8)), ("kernel_size", .ints([1, 7])),
                                                         ("padding", .ints([0, 3])), ("dilation", .int(2)), ("groups", .int(2))])
                == "Conv2d(4, 8, kernel_size=(1, 7), stride=(1, 1), padding=(0, 3), dilation=(2, 2), groups=2)")
        #expect(PyRepr.leaf(type: "leaky_relu", attributes: [("negative_slope", .float(0.01))]) == "leaky_relu(negative_slope=0.01)")
        // the layers ONNX's MobileNet operators import as print as PyTorch's modules (checked against torch 2.15's repr)
        #expect(PyRepr.leaf(type: "leakyrelu", attributes: [("negative_slope", .float(0.2))]) == "LeakyReLU(negative_slope=0.2)")
        #expect(PyRepr.leaf(type: "hardtanh", attributes: [("min_val", .float(-1)), ("max_val", .float(2))])
                == "Hardtanh(min_val=-1.0, max_val=2.0)")
        #expect(PyRepr.leaf(type: "relu6", attributes: []) == "ReLU6()" && PyRepr.leaf(type: "hardsigmoid", attributes: []) == "Hardsigmoid()")
        #expect(PyRepr.leaf(type: "pad2d", attributes: [("padding", .ints([0, 1, 0, 1]))]) == "ZeroPad2d((0, 1, 0, 1))")
        #expect(PyRepr.leaf(type: "pad2d", attributes: [("padding", .int(1))]) == "ZeroPad2d((1, 1, 1, 1))")
        #expect(PyRepr.leaf(type: "pad2d", attributes: [("padding", .ints([1, 0, 2, 1])), ("mode", .string("reflect"))])
                == "ReflectionPad2d((1, 0, 2, 1))")
        #expect(PyRepr.leaf(type: "pad2d", attributes: [("padding", .ints([0, 1, 2, 0])), ("value", .float(-1.5))])
                == "ConstantPad2d(padding=(0, 1, 2, 0), value=-1.5)")
    }

    /// Joins take the maximum over their inputs; dotted names nest.
    @Test func joinsAndGroups() throws {
        let text = """
            model: two_paths
            layers:
              - group: a
                layers:
                  - {type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 5, padding: 2}
              - group: b
                inputs: input
                layers:
                  - {type: conv2d, in_channels: 1, out_channels: 2, kernel_size: 3, padding: 1, stride: 2}
                  - {type: interpolate, size: 8}
              - {name: sum, type: add, inputs: [a.0, b.1]}
              - {name: cat, type: concat, inputs: [sum, a.0]}
            """
        let m = try Zoo.model(text: text, runtime: sharedRuntime, imageSize: 8)
        let s = try ModelSummary(model: m, inputShape: [1, 1, 8, 8], className: "TwoPaths")
        #expect(s.tree == """
            TwoPaths(
              (a): Sequential(
                (0): Conv2d(1, 2, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
              )
              (b): Sequential(
                (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
                (1): Upsample(size=8, mode='nearest')
              )
              (sum): Add()
              (cat): Concat(dim=1)
            )
            """)
        func row(_ n: String) -> ModelSummary.Row? { s.rows.first { $0.name == n } }
        #expect(row("b.0")?.receptiveField == ModelSummary.Extent(3, 3) && row("b.0")?.jump == ModelSummary.Extent(2, 2))
        #expect(row("b.1")?.jump == ModelSummary.Extent(1, 1))
        #expect(row("sum")?.receptiveField == ModelSummary.Extent(5, 5) && row("sum")?.inputs == ["a.0", "b.1"])
        #expect(row("cat")?.outputShape == [1, 4, 8, 8])
    }

    @Test func cliPrintsTheSummary() throws {
        let out = try CLITests.run(["summary", "convnet"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("ConvNet(\n  (conv_1): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"))
        #expect(out.stdout.contains("Total params: 9,098\nTrainable params: 9,098\n"))
        #expect(out.stdout.contains("pool_2 (maxpool2d)"))
        let big = try CLITests.run(["summary", "resnet18", "--num-classes", "1000", "--in-channels", "3", "--image-size", "224", "--batch", "2"])
        #expect(big.status == 0, "\(big.stderr)")
        #expect(big.stdout.contains("Total params: 11,689,512") && big.stdout.contains("Output shape: [2, 1000]"))
        let bad = try CLITests.run(["summary", "resnet9"])
        #expect(bad.status != 0 && bad.stderr.contains("unknown model 'resnet9'"), "\(bad.stderr)")
        let file = try CLITests.run(["summary", "/nonexistent/net.yaml"])
        #expect(file.status != 0 && file.stderr.contains("/nonexistent/net.yaml"), "\(file.stderr)")
    }
}
