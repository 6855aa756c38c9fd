extension PlyError {
    /// What is wrong with an attribute list that does not fit the layer type's schema (ABI 1.2
    /// `attr_specs`), found before `create`: from model files, Swift and C callers and
    /// composites' `create_layer` alike. Thrown as ``PlyError/attribute(_:)``:
    ///
    ///     layer 'c' (conv2d): unknown attribute 'paddin'; did you mean 'padding'? (conv2d takes in_channels, ...)
    ///
    /// Model files report it as a `ModelFileError` of kind `badAttribute` pointed at the attribute.
    public struct AttributeProblem: CustomStringConvertible, Equatable, Sendable {
        /// What is wrong.
        public enum Kind: Sendable, Equatable {
            /// The name is not in the schema; `suggestion` is the closest valid name, if any is close.
            case unknown(suggestion: String?)
            /// The value has a kind the attribute does not take.
            case wrongKind(expected: String, given: String)
            /// A required attribute is not given.
            case missing
            /// The same name is given twice.
            case duplicate
            /// The type declares no schema and strict attribute checking is on.
            case unchecked
        }

        /// What is wrong.
        public let kind: Kind
        /// The node name, when known.
        public let layer: String?
        /// The layer's type; for a child a composite creates through `create_layer`, the composite's.
        public let type: String
        /// The attribute (nil for `.unchecked`).
        public let name: String?
        /// For a child a composite creates through `create_layer`: the child's type (the
        /// attribute is the child's, not one the caller gave).
        public let childType: String?
        /// The whole explanation, with the valid names or kinds.
        public let reason: String

        /// A problem with attribute `name` of `type` (node `layer`), or of its child of type `childType`.
        public init(_ kind: Kind, layer: String?, type: String, name: String?, childType: String? = nil, reason: String) {
            self.kind = kind
            self.layer = layer
            self.type = type
            self.name = name
            self.childType = childType
            self.reason = reason
        }

        /// The message in words, as `print` and error reports show it.
        public var description: String { (layer.map { "layer '\($0)' (\(type))" } ?? type) + ": " + reason }
    }
}
