import CPly

// The layouts of `infer`'s values (plugin.h's `ply_layout`, ABI 1.7): which values stay in
// blocks of 16 channels between the layers that write and read them.
extension Model {

    /// Each node's value layout for `infer` with values of `shapes`: NCHW16c where its layer can
    /// write it (`eval_layouts`), it is 4-D, and every node reading it can read it so; NCHW
    /// elsewhere, for the model's input and output, in training, and with
    /// `Runtime.Options.blockedLayouts` off. So no value is ever converted: a layer reading NCHW
    /// that writes NCHW16c starts a blocked run, one reading NCHW16c that writes NCHW ends it.
    func planLayouts(_ shapes: [Shape], skipped: Set<NodeID>) throws -> [ValueLayout] {
        var layouts = Array(repeating: ValueLayout.nchw, count: nodes.count)
        guard inferFolding, runtime.state.blockedLayouts else { return layouts }
        let blocked = ValueLayout.nchw16c.bit
        var writes = Array(repeating: false, count: nodes.count)
        var reads: [(NodeID, [UInt32])] = []
        for id in 1..<nodes.count where fusedFrom[id] < 0 && !skipped.contains(id) {
            guard let layer = inferLayer(id) else { continue }
            let inputs = inferInputs(id)
            let (accepts, produces) = try layer.evalLayouts(try inputs.map { try shapes[$0].cShape() })
            writes[id] = produces & blocked != 0 && shapes[id].rank == 4
            reads.append((id, accepts))
        }
        writes[Model.input] = false
        writes[owner(output)] = false
        for (id, accepts) in reads {
            for (k, i) in inferInputs(id).enumerated() where accepts[k] & blocked == 0 { writes[owner(i)] = false }
        }
        for id in nodes.indices where writes[id] { layouts[id] = .nchw16c }
        return layouts
    }

    /// The layer `infer` runs for node `id`: its fold's conv in a folded plan, else its own.
    func inferLayer(_ id: NodeID) -> Layer? {
        if inferFolding, let fold = folds[id] { return fold.layer }
        return nodes[id].layer
    }

    /// The layout of node `id`'s value in the plan of the last `infer` (NCHW before one is made):
    /// which values stayed in blocks of 16 channels between layers (`ply bench-model` counts them).
    public func inferenceLayout(of id: NodeID) -> ValueLayout {
        owner(id) < inferLayouts.count ? inferLayouts[owner(id)] : .nchw
    }
}
