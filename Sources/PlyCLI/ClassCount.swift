import Foundation
import Ply

/// The number of classes the weights were trained for: the first dimension of the weight of
/// the model's last layer with parameters (its output layer; the model is built once with 10
/// classes to find it).
func classCount(model: String, weights: String, runtime: Runtime, channels: Int, size: Int) throws -> Int {
    let probe = try ModelSource.build(model, runtime: runtime, numClasses: 10, inChannels: channels, imageSize: size)
    let entries = try SafeTensors.read(path: weights).entries
    var id = probe.output
    while id != Model.input {
        let n = probe.nodes[id]
        if let layer = n.layer, let weight = try layer.parameters.first(where: { $0.trainable }) {
            let name = "\(n.name).\(weight.name)"
            guard let entry = entries[name], let first = entry.shape.first, first >= 1 else {
                throw PlyError.invalid("\(weights): no tensor '\(name)' (the output layer's \(weight.name)) to take the "
                    + "number of classes from; give --num-classes")
            }
            return first
        }
        guard let next = n.inputs.first else { break }
        id = next
    }
    throw PlyError.invalid("cannot tell the number of classes of model '\(model)' from \(weights); give --num-classes")
}
