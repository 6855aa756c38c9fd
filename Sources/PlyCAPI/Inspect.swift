import CPlyAPI
import Foundation
import Ply

// ply_inspect_* (API 1.4): `ModelInspector` for C callers; see ply.h for the contract.

/// An inspector for the images the model handle was made for.
private func inspector(_ m: ModelHandle) throws -> ModelInspector {
    try ModelInspector(model: m.model, channels: m.inChannels, height: m.imageSize, width: m.imageSize)
}

/// `scale` as ModelInspector takes it: 0 is automatic (nil), otherwise 1...32.
private func inspectScale(_ scale: Int32) throws -> Int? {
    guard scale == 0 || ModelInspector.scales.contains(Int(scale)) else {
        throw CAPIError(Status.invalidArgument, "scale is \(scale); it must be 0 (automatic) or "
            + "\(ModelInspector.scales.lowerBound)...\(ModelInspector.scales.upperBound)")
    }
    return scale == 0 ? nil : Int(scale)
}

/// The caller's image: exactly in_channels x image_size x image_size floats.
private func inspectImage(_ m: ModelHandle, _ image: UnsafePointer<Float>?, _ count: Int64) throws -> [Float] {
    guard let image else { throw CAPIError(Status.invalidArgument, "image is NULL") }
    let expected = m.inChannels * m.imageSize * m.imageSize
    guard count == Int64(expected) else {
        throw CAPIError(Status.shape, "image_count is \(count); the model takes \(m.inChannels)x\(m.imageSize)x\(m.imageSize) "
            + "= \(expected) floats (CHW)")
    }
    return Array(UnsafeBufferPointer(start: image, count: expected))
}

private func writeBox(_ box: ReceptiveFieldBox, _ out: UnsafeMutablePointer<Int32>?) {
    guard let out else { return }
    for (i, v) in [box.top, box.left, box.bottom, box.right].enumerated() {
        out[i] = Int32(clamping: v)
    }
}

@_cdecl("ply_inspect_filters")
public func capi_inspect_filters(_ model: OpaquePointer?, _ scale: Int32, _ pngPath: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let path = try string(pngPath, "png_path")
        let s = try inspectScale(scale)
        try inspector(m).filters(scale: s).picture.write(to: path)
    }
}

@_cdecl("ply_inspect_feature_maps")
public func capi_inspect_feature_maps(_ model: OpaquePointer?, _ image: UnsafePointer<Float>?, _ count: Int64,
                                      _ layer: UnsafePointer<CChar>?, _ scale: Int32,
                                      _ pngPath: UnsafePointer<CChar>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let name = try string(layer, "layer")
        let path = try string(pngPath, "png_path")
        let s = try inspectScale(scale)
        let pixels = try inspectImage(m, image, count)
        try inspector(m).featureMaps(layer: name, image: pixels, scale: s).write(to: path)
    }
}

@_cdecl("ply_inspect_receptive_field")
public func capi_inspect_receptive_field(_ model: OpaquePointer?, _ layer: UnsafePointer<CChar>?, _ y: Int32, _ x: Int32,
                                         _ boxOut: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let name = try string(layer, "layer")
        let out = try checkOut(boxOut, "box_out")
        let box = try inspector(m).receptiveField(layer: name, y: Int(y), x: Int(x))
        writeBox(box, out)
    }
}

@_cdecl("ply_inspect_receptive_field_png")
public func capi_inspect_receptive_field_png(_ model: OpaquePointer?, _ image: UnsafePointer<Float>?, _ count: Int64,
                                             _ layer: UnsafePointer<CChar>?, _ y: Int32, _ x: Int32, _ scale: Int32,
                                             _ pngPath: UnsafePointer<CChar>?,
                                             _ boxOut: UnsafeMutablePointer<Int32>?) -> Int32 {
    boundary {
        let m = try object(model, ModelHandle.self, "model")
        let name = try string(layer, "layer")
        let path = try string(pngPath, "png_path")
        let s = try inspectScale(scale)
        let pixels = try inspectImage(m, image, count)
        let (box, picture) = try inspector(m).receptiveFieldPicture(layer: name, y: Int(y), x: Int(x), image: pixels, scale: s)
        try picture.write(to: path)
        writeBox(box, boxOut)
    }
}
