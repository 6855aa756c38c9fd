extension Zoo {
    /// resnet18 ... resnet152: one file; the block type and the blocks per stage are parameters.
    static let resNetFamily: [Entry] = [
        ("resnet18", "residual_basic", [2, 2, 2, 2]), ("resnet34", "residual_basic", [3, 4, 6, 3]),
        ("resnet50", "residual_bottleneck", [3, 4, 6, 3]), ("resnet101", "residual_bottleneck", [3, 4, 23, 3]),
        ("resnet152", "residual_bottleneck", [3, 8, 36, 3]),
    ].map { name, block, counts in
        var p: [String: AttributeValue] = ["block": .string(block), "expansion": .int(block == "residual_basic" ? 1 : 4)]
        for (i, n) in counts.enumerated() { p["blocks\(i + 1)"] = .int(n) }
        return Entry(name, resNetText, p)
    }

    /// torchvision's ResNet: stem, four stages of residual blocks (layer1.0, layer1.1, ...),
    /// global average pool and fc. The first block of stages 2-4 halves the resolution and
    /// has a downsample branch (also stage 1's with bottleneck blocks, which widen 64 -> 256).
    public static let resNetText = """
        model: resnet
        description: torchvision's ResNet (Deep Residual Learning, 2015); resnet18/34 use basic blocks, 50/101/152 bottlenecks
        params:
          num_classes: 1000
          in_channels: 3
          block: residual_basic   # or residual_bottleneck
          expansion: 1            # output channels per `planes`: 1 (basic), 4 (bottleneck)
          blocks1: 2
          blocks2: 2
          blocks3: 2
          blocks4: 2
        layers:
          - {name: conv1, type: conv2d, in_channels: $in_channels, out_channels: 64, kernel_size: 7, stride: 2, padding: 3, bias: false}
          - {name: bn1, type: batchnorm2d, num_features: 64}
          - {name: relu, type: relu}
          - {name: maxpool, type: maxpool2d, kernel_size: 3, stride: 2, padding: 1}
          - group: layer1         # blocks are numbered layer1.0, layer1.1, ...
            layers:
              - {type: $block, inplanes: 64, planes: 64, stride: 1, downsample: $(expansion != 1)}
              - repeat: $(blocks1 - 1)
                layers:
                  - {type: $block, inplanes: $(64 * expansion), planes: 64, stride: 1, downsample: false}
          - group: layer2
            layers:
              - {type: $block, inplanes: $(64 * expansion), planes: 128, stride: 2, downsample: true}
              - repeat: $(blocks2 - 1)
                layers:
                  - {type: $block, inplanes: $(128 * expansion), planes: 128, stride: 1, downsample: false}
          - group: layer3
            layers:
              - {type: $block, inplanes: $(128 * expansion), planes: 256, stride: 2, downsample: true}
              - repeat: $(blocks3 - 1)
                layers:
                  - {type: $block, inplanes: $(256 * expansion), planes: 256, stride: 1, downsample: false}
          - group: layer4
            layers:
              - {type: $block, inplanes: $(256 * expansion), planes: 512, stride: 2, downsample: true}
              - repeat: $(blocks4 - 1)
                layers:
                  - {type: $block, inplanes: $(512 * expansion), planes: 512, stride: 1, downsample: false}
          - {name: avgpool, type: adaptive_avgpool2d, output_size: 1}
          - {name: flatten, type: flatten}
          - {name: fc, type: linear, in_features: $(512 * expansion), out_features: $num_classes}

        """
}
