import Ply

/// One layer of an imported model: its node name, type, attributes and inputs.
public struct ImportedLayer: Sendable {
    /// The node name (also its parameters' prefix in the state_dict).
    public var name: String
    /// The Ply layer type.
    public var type: String
    /// Its attributes, with the plugin's names.
    public var attributes: Attributes
    /// The nodes it reads (`input` is the model input).
    public var inputs: [String]
}
