extension Zoo {
    static let inceptionFamily = [Entry("inception_v3", inceptionV3Text)]

    /// torchvision's Inception v3 (transform_input false). `AuxLogits` exists when
    /// `aux_logits` is true (its weights are in the state_dict); the model's output is
    /// always the main classifier `fc`.
    public static let inceptionV3Text = """
        model: inception_v3
        description: torchvision's Inception v3 (Rethinking the Inception Architecture, 2015)
        params:
          num_classes: 1000
          in_channels: 3
          aux_logits: false
          dropout: 0.5
        min_input_size: $(299 if aux_logits else 75)   # AuxLogits needs Mixed_6e at 17x17
        layers:
          - {name: Conv2d_1a_3x3, type: basic_conv2d, in_channels: $in_channels, out_channels: 32, kernel_size: 3, stride: 2}
          - {name: Conv2d_2a_3x3, type: basic_conv2d, in_channels: 32, out_channels: 32, kernel_size: 3}
          - {name: Conv2d_2b_3x3, type: basic_conv2d, in_channels: 32, out_channels: 64, kernel_size: 3, padding: 1}
          - {name: maxpool1, type: maxpool2d, kernel_size: 3, stride: 2}
          - {name: Conv2d_3b_1x1, type: basic_conv2d, in_channels: 64, out_channels: 80, kernel_size: 1}
          - {name: Conv2d_4a_3x3, type: basic_conv2d, in_channels: 80, out_channels: 192, kernel_size: 3}
          - {name: maxpool2, type: maxpool2d, kernel_size: 3, stride: 2}
          - {name: Mixed_5b, type: inception_v3_a, in_channels: 192, pool_features: 32}
          - {name: Mixed_5c, type: inception_v3_a, in_channels: 256, pool_features: 64}
          - {name: Mixed_5d, type: inception_v3_a, in_channels: 288, pool_features: 64}
          - {name: Mixed_6a, type: inception_v3_b, in_channels: 288}
          - {name: Mixed_6b, type: inception_v3_c, in_channels: 768, channels_7x7: 128}
          - {name: Mixed_6c, type: inception_v3_c, in_channels: 768, channels_7x7: 160}
          - {name: Mixed_6d, type: inception_v3_c, in_channels: 768, channels_7x7: 160}
          - {name: Mixed_6e, type: inception_v3_c, in_channels: 768, channels_7x7: 192}
          # the auxiliary classifier branches off Mixed_6e (torchvision registers it here)
          - {name: AuxLogits, type: inception_v3_aux, in_channels: 768, num_classes: $num_classes, if: $aux_logits}
          - {name: Mixed_7a, type: inception_v3_d, in_channels: 768, inputs: Mixed_6e}
          - {name: Mixed_7b, type: inception_v3_e, in_channels: 1280}
          - {name: Mixed_7c, type: inception_v3_e, in_channels: 2048}
          - {name: avgpool, type: adaptive_avgpool2d, output_size: 1}
          - {name: flatten, type: flatten}
          - {name: dropout, type: dropout, p: $dropout}
          - {name: fc, type: linear, in_features: 2048, out_features: $num_classes}

        """
}
