extension Zoo {
    /// vgg11 ... vgg19 and their _bn variants: one file, the convs per stage and batch-norm as parameters.
    static let vggFamily: [Entry] = [
        ("vgg11", [1, 1, 2, 2, 2]), ("vgg13", [2, 2, 2, 2, 2]), ("vgg16", [2, 2, 3, 3, 3]), ("vgg19", [2, 2, 4, 4, 4]),
    ].flatMap { name, convs in
        [false, true].map { bn in
            var p: [String: AttributeValue] = ["batch_norm": .bool(bn)]
            for (i, n) in convs.enumerated() { p["stage\(i + 1)"] = .int(n) }
            return Entry(bn ? name + "_bn" : name, vggText, p)
        }
    }

    /// torchvision's VGG: five stages of 3×3 convs (+ batch-norm) + ReLU, each closed by a
    /// 2×2 max-pool; `stageN` is the number of convs in stage N (vgg16: 2, 2, 3, 3, 3).
    public static let vggText = """
        model: vgg
        description: torchvision's VGG (Very Deep Convolutional Networks, 2014); vgg11/13/16/19, optionally with batch-norm
        params:
          num_classes: 1000
          in_channels: 3
          batch_norm: false
          dropout: 0.5
          stage1: 2
          stage2: 2
          stage3: 3
          stage4: 3
          stage5: 3
        min_input_size: 32      # five 2x2 max-pools
        layers:
          - group: features
            layers:
              # stage 1: 64 channels
              - {type: conv2d, in_channels: $in_channels, out_channels: 64, kernel_size: 3, padding: 1}
              - {type: batchnorm2d, num_features: 64, if: $batch_norm}
              - {type: relu}
              - repeat: $(stage1 - 1)
                layers:
                  - {type: conv2d, in_channels: 64, out_channels: 64, kernel_size: 3, padding: 1}
                  - {type: batchnorm2d, num_features: 64, if: $batch_norm}
                  - {type: relu}
              - {type: maxpool2d, kernel_size: 2, stride: 2}
              # stage 2: 128 channels
              - {type: conv2d, in_channels: 64, out_channels: 128, kernel_size: 3, padding: 1}
              - {type: batchnorm2d, num_features: 128, if: $batch_norm}
              - {type: relu}
              - repeat: $(stage2 - 1)
                layers:
                  - {type: conv2d, in_channels: 128, out_channels: 128, kernel_size: 3, padding: 1}
                  - {type: batchnorm2d, num_features: 128, if: $batch_norm}
                  - {type: relu}
              - {type: maxpool2d, kernel_size: 2, stride: 2}
              # stage 3: 256 channels
              - {type: conv2d, in_channels: 128, out_channels: 256, kernel_size: 3, padding: 1}
              - {type: batchnorm2d, num_features: 256, if: $batch_norm}
              - {type: relu}
              - repeat: $(stage3 - 1)
                layers:
                  - {type: conv2d, in_channels: 256, out_channels: 256, kernel_size: 3, padding: 1}
                  - {type: batchnorm2d, num_features: 256, if: $batch_norm}
                  - {type: relu}
              - {type: maxpool2d, kernel_size: 2, stride: 2}
              # stage 4: 512 channels
              - {type: conv2d, in_channels: 256, out_channels: 512, kernel_size: 3, padding: 1}
              - {type: batchnorm2d, num_features: 512, if: $batch_norm}
              - {type: relu}
              - repeat: $(stage4 - 1)
                layers:
                  - {type: conv2d, in_channels: 512, out_channels: 512, kernel_size: 3, padding: 1}
                  - {type: batchnorm2d, num_features: 512, if: $batch_norm}
                  - {type: relu}
              - {type: maxpool2d, kernel_size: 2, stride: 2}
              # stage 5: 512 channels
              - repeat: $stage5
                layers:
                  - {type: conv2d, in_channels: 512, out_channels: 512, kernel_size: 3, padding: 1}
                  - {type: batchnorm2d, num_features: 512, if: $batch_norm}
                  - {type: relu}
              - {type: maxpool2d, kernel_size: 2, stride: 2}
          - {name: avgpool, type: adaptive_avgpool2d, output_size: [7, 7]}
          - {name: flatten, type: flatten}
          - group: classifier
            layers:
              - {type: linear, in_features: 25088, out_features: 4096}
              - {type: relu}
              - {type: dropout, p: $dropout}
              - {type: linear, in_features: 4096, out_features: 4096}
              - {type: relu}
              - {type: dropout, p: $dropout}
              - {type: linear, in_features: 4096, out_features: $num_classes}

        """
}
