import CPlyAPI
import Foundation
import Ply

// ply_inspect_* (API 1.4) and ply_image_read (1.6): `ModelInspector` and `PNGImage` for C
// callers; see ply.h for the contract.

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

@_cdecl("ply_image_read")
public func capi_image_read(_ path: UnsafePointer<CChar>?, _ channels: Int32, _ image: UnsafeMutablePointer<Float>?,
                            _ capacity: Int64, _ shape: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let path = try string(path, "path")
        let shape = try checkOut(shape, "shape_out")
        guard channels == 0 || channels == 1 || channels == 3 else {
            throw CAPIError(Status.invalidArgument, "channels is \(channels); 0 (the file's own), 1 (gray) or 3 (RGB)")
        }
        let picture: PNGImage
        do { picture = try PNGImage(contentsOf: path, channels: channels == 0 ? nil : Int(channels)) } catch {
            throw CAPIError(Status.io, "\(error)")
        }
        let planes = picture.planes
        if let image {
            guard capacity >= Int64(planes.count) else {
                throw CAPIError(Status.shape, "capacity is \(capacity) floats; \(path) is \(picture.channels)x\(picture.height)x\(picture.width) "
                    + "= \(planes.count) floats (CHW)")
            }
            planes.withUnsafeBufferPointer { image.update(from: $0.baseAddress!, count: planes.count) }
        }
        shape[0] = Int64(picture.channels)
        shape[1] = Int64(picture.height)
        shape[2] = Int64(picture.width)
    }
}
