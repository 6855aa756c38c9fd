import CPlyAPI
import Foundation
import Ply

/// A `ply_model`: the model, what it was built for, and the scratch its calls reuse.
final class ModelHandle: Handle {
    override class var cName: String { "ply_model" }
    let model: Model
    /// Keeps the runtime handle (and the layer-type strings it gave out) alive.
    let runtime: RuntimeHandle
    let numClasses: Int, inChannels: Int, imageSize: Int
    /// The last input shape `forward` saw and the output shape it gives.
    var plannedInput: [Int] = []
    var plannedOutput: Shape = Shape([Int]())
    /// Mean cross-entropy for train_step, made on first use.
    var loss: Layer?

    init(model: Model, runtime: RuntimeHandle, numClasses: Int, inChannels: Int, imageSize: Int) {
        self.model = model
        self.runtime = runtime
        self.numClasses = numClasses
        self.inChannels = inChannels
        self.imageSize = imageSize
    }

    /// The output shape for `dims`, as the graph's shape inference says (cached).
    func outputShape(for dims: [Int]) throws -> Shape {
        if dims == plannedInput { return plannedOutput }
        let shapes: [Shape]
        do {
            shapes = try model.shapes(for: Shape(dims))
        } catch {
            // A shape the graph refuses is PLY_ERR_SHAPE; a plugin's other status (out of
            // memory, ...) or a typed error of another kind keeps its own code.
            let (status, message) = result(for: error)
            throw CAPIError(status == Status.invalidArgument ? Status.shape : status,
                            "the model cannot take input \(Shape(dims)): \(message)")
        }
        guard model.output < shapes.count else { throw CAPIError(Status.internal, "model output node out of range") }
        plannedInput = dims
        plannedOutput = shapes[model.output]
        return plannedOutput
    }
}

func checkSizes(_ numClasses: Int32, _ inChannels: Int32, _ imageSize: Int32) throws {
    guard numClasses >= 1 else { throw CAPIError(Status.invalidArgument, "num_classes is \(numClasses); it must be >= 1") }
    guard inChannels >= 1 else { throw CAPIError(Status.invalidArgument, "in_channels is \(inChannels); it must be >= 1") }
    guard imageSize >= 1 else { throw CAPIError(Status.invalidArgument, "image_size is \(imageSize); it must be >= 1") }
}

@_cdecl("ply_model_from_zoo")
public func capi_model_from_zoo(_ runtime: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ numClasses: Int32,
                                _ inChannels: Int32, _ imageSize: Int32,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        let name = try string(name, "name")
        let out = try checkOut(out, "out")
        try checkSizes(numClasses, inChannels, imageSize)
        let model = try Zoo.model(named: name, runtime: r.runtime, numClasses: Int(numClasses),
                                  inChannels: Int(inChannels), imageSize: Int(imageSize))
        out.pointee = retain(ModelHandle(model: model, runtime: r, numClasses: Int(numClasses),
                                         inChannels: Int(inChannels), imageSize: Int(imageSize)))
    }
}

@_cdecl("ply_model_from_text")
public func capi_model_from_text(_ runtime: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ numClasses: Int32,
                                 _ inChannels: Int32, _ imageSize: Int32,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary {
        let r = try object(runtime, RuntimeHandle.self, "runtime")
        let text = try string(text, "text")
        let out = try checkOut(out, "out")
        try checkSizes(numClasses, inChannels, imageSize)
        let model = try Zoo.model(text: text, source: "<ply_model_from_text>", runtime: r.runtime,
                                  numClasses: Int(numClasses), inChannels: Int(inChannels), imageSize: Int(imageSize))
        out.pointee = retain(ModelHandle(model: model, runtime: r, numClasses: Int(numClasses),
                                         inChannels: Int(inChannels), imageSize: Int(imageSize)))
    }
}

@_cdecl("ply_model_destroy")
public func capi_model_destroy(_ model: OpaquePointer?) { release(model) }

@_cdecl("ply_model_load_weights")
public func capi_model_load_weights(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let path = try string(path, "path")
        guard FileManager.default.fileExists(atPath: path) else { throw CAPIError(Status.io, "\(path): no such file") }
        try m.model.loadWeights(from: path, strict: true, ignoringPrefix: "optimizer.")
    }
}

@_cdecl("ply_model_save_weights")
public func capi_model_save_weights(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let path = try string(path, "path")
        do {
            try m.model.saveWeights(to: path)
        } catch let e as SafeTensorsError {
            throw e
        } catch let PlyError.frozen(message) {
            throw PlyError.frozen(message)
        } catch {
            throw CAPIError(Status.io, "cannot write \(path): \(error)")
        }
    }
}

@_cdecl("ply_model_set_training")
public func capi_model_set_training(_ model: OpaquePointer?, _ training: Int32) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        if training != 0 && m.model.isFrozen {
            throw PlyError.frozen("the model is frozen for inference (ply_model_freeze): it cannot train")
        }
        m.model.isTraining = training != 0
    }
}

@_cdecl("ply_model_freeze")
public func capi_model_freeze(_ model: OpaquePointer?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        try m.model.freezeForInference()
    }
}

@_cdecl("ply_model_prepare_lanes")
public func capi_model_prepare_lanes(_ model: OpaquePointer?, _ batch: Int64, _ lanes: Int32,
                                     _ lanesOut: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        guard batch >= 1, batch <= Int64(Int32.max) else { throw PlyError.invalid("batch must be at least 1, got \(batch)") }
        guard lanes >= 0 else { throw PlyError.invalid("lanes must be 0 (choose) or more, got \(lanes)") }
        let made = try m.model.prepareLanes(forBatch: Int(batch), lanes: lanes == 0 ? nil : Int(lanes))
        lanesOut?.pointee = Int32(made)
    }
}

@_cdecl("ply_model_input")
public func capi_model_input(_ model: OpaquePointer?, _ numClasses: UnsafeMutablePointer<Int32>?,
                             _ inChannels: UnsafeMutablePointer<Int32>?, _ imageSize: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        numClasses?.pointee = Int32(m.numClasses)
        inChannels?.pointee = Int32(m.inChannels)
        imageSize?.pointee = Int32(m.imageSize)
    }
}

@_cdecl("ply_model_parameter_count")
public func capi_model_parameter_count(_ model: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let out = try checkOut(count, "count_out")
        out.pointee = Int64(try m.model.namedParameters().filter { $0.parameter.trainable }.reduce(0) { $0 + $1.parameter.shape.count })
    }
}

@_cdecl("ply_model_forward")
public func capi_model_forward(_ model: OpaquePointer?, _ input: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                               _ ndim: Int32, _ output: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                               _ outputShape: UnsafeMutablePointer<Int64>?, _ outputNdim: UnsafeMutablePointer<Int32>?) -> Int32 {
    runModel(model, input, shape, ndim, output, capacity, outputShape, outputNdim, keepActivations: true)
}

@_cdecl("ply_model_infer")
public func capi_model_infer(_ model: OpaquePointer?, _ input: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                             _ ndim: Int32, _ output: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                             _ outputShape: UnsafeMutablePointer<Int64>?, _ outputNdim: UnsafeMutablePointer<Int32>?) -> Int32 {
    runModel(model, input, shape, ndim, output, capacity, outputShape, outputNdim, keepActivations: false)
}

/// ply_model_forward (`Model.forward`) and ply_model_infer (`Model.infer`): the same checks.
private func runModel(_ model: OpaquePointer?, _ input: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?,
                      _ ndim: Int32, _ output: UnsafeMutablePointer<Float>?, _ capacity: Int64,
                      _ outputShape: UnsafeMutablePointer<Int64>?, _ outputNdim: UnsafeMutablePointer<Int32>?,
                      keepActivations: Bool) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        guard ndim >= 1, ndim <= Int32(PLY_MAX_NDIM) else {
            throw CAPIError(Status.shape, "ndim is \(ndim); it must be 1...\(PLY_MAX_NDIM)")
        }
        guard let shape else { throw CAPIError(Status.invalidArgument, "shape is NULL") }
        let dims = (0..<Int(ndim)).map { Int(shape[$0]) }
        let count = try elementCount(dims, "input shape")
        guard let input else { throw CAPIError(Status.invalidArgument, "input is NULL") }
        let out = try m.outputShape(for: dims)
        if let outputShape { for (i, d) in out.dims.enumerated() { outputShape[i] = Int64(d) } }
        outputNdim?.pointee = Int32(out.rank)
        guard capacity >= Int64(out.count) else {
            throw CAPIError(Status.shape, "the output \(out) needs \(out.count) floats; output_capacity is \(capacity)")
        }
        guard let output else { throw CAPIError(Status.invalidArgument, "output is NULL") }
        let values = UnsafeBufferPointer(start: input, count: count)
        let result = keepActivations ? try m.model.forward(values, shape: Shape(dims))
                                     : try m.model.infer(values, shape: Shape(dims))
        guard result.count == out.count, let base = result.baseAddress else {
            throw CAPIError(Status.internal, "forward gave \(result.count) values; shape inference said \(out.count)")
        }
        output.update(from: base, count: result.count)
    }
}

@_cdecl("ply_model_init_normal")
public func capi_model_init_normal(_ model: OpaquePointer?, _ std: Double, _ seed: UInt64) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        try Initialization.normal(std: std).apply(to: m.model, seed: seed)
    }
}
