extension Zoo {
    static let alexNetFamily = [Entry("alexnet", alexNetText)]

    /// torchvision's AlexNet (features.N / classifier.N numbering). 61,100,840 parameters.
    public static let alexNetText = """
        model: alexnet
        description: torchvision's AlexNet (One weird trick..., 2014)
        params:
          num_classes: 1000
          in_channels: 3
          dropout: 0.5
        min_input_size: 63      # smaller images are resized up to 63x63
        layers:
          - group: features     # unnamed entries are numbered 0, 1, 2, ... as in nn.Sequential
            layers:
              - {type: conv2d, in_channels: $in_channels, out_channels: 64, kernel_size: 11, stride: 4, padding: 2}
              - {type: relu}
              - {type: maxpool2d, kernel_size: 3, stride: 2}
              - {type: conv2d, in_channels: 64, out_channels: 192, kernel_size: 5, padding: 2}
              - {type: relu}
              - {type: maxpool2d, kernel_size: 3, stride: 2}
              - {type: conv2d, in_channels: 192, out_channels: 384, kernel_size: 3, padding: 1}
              - {type: relu}
              - {type: conv2d, in_channels: 384, out_channels: 256, kernel_size: 3, padding: 1}
              - {type: relu}
              - {type: conv2d, in_channels: 256, out_channels: 256, kernel_size: 3, padding: 1}
              - {type: relu}
              - {type: maxpool2d, kernel_size: 3, stride: 2}
          - {name: avgpool, type: adaptive_avgpool2d, output_size: [6, 6]}
          - {name: flatten, type: flatten}
          - group: classifier
            layers:
              - {type: dropout, p: $dropout}
              - {type: linear, in_features: 9216, out_features: 4096}
              - {type: relu}
              - {type: dropout, p: $dropout}
              - {type: linear, in_features: 4096, out_features: 4096}
              - {type: relu}
              - {type: linear, in_features: 4096, out_features: $num_classes}

        """
}
