extension Zoo {
    static let googLeNetFamily = [Entry("googlenet", googLeNetText)]

    /// torchvision's GoogLeNet (transform_input false). The auxiliary classifiers aux1/aux2
    /// exist when `aux_logits` is true (their weights are in the state_dict); the model's
    /// output is always the main classifier `fc`.
    public static let googLeNetText = """
        model: googlenet
        description: torchvision's GoogLeNet (Going Deeper with Convolutions, 2014)
        params:
          num_classes: 1000
          in_channels: 3
          aux_logits: false
          dropout: 0.2
          dropout_aux: 0.7
        min_input_size: 31      # conv1 and four ceil-mode max-pools; maxpool4 needs 2x2
        layers:
          - {name: conv1, type: basic_conv2d, in_channels: $in_channels, out_channels: 64, kernel_size: 7, stride: 2, padding: 3}
          - {name: maxpool1, type: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}
          - {name: conv2, type: basic_conv2d, in_channels: 64, out_channels: 64, kernel_size: 1}
          - {name: conv3, type: basic_conv2d, in_channels: 64, out_channels: 192, kernel_size: 3, padding: 1}
          - {name: maxpool2, type: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}
          # in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj
          - {name: inception3a, type: inception_googlenet, in_channels: 192, ch1x1: 64, ch3x3red: 96, ch3x3: 128, ch5x5red: 16, ch5x5: 32, pool_proj: 32}
          - {name: inception3b, type: inception_googlenet, in_channels: 256, ch1x1: 128, ch3x3red: 128, ch3x3: 192, ch5x5red: 32, ch5x5: 96, pool_proj: 64}
          - {name: maxpool3, type: maxpool2d, kernel_size: 3, stride: 2, ceil_mode: true}
          - {name: inception4a, type: inception_googlenet, in_channels: 480, ch1x1: 192, ch3x3red: 96, ch3x3: 208, ch5x5red: 16, ch5x5: 48, pool_proj: 64}
          - {name: inception4b, type: inception_googlenet, in_channels: 512, ch1x1: 160, ch3x3red: 112, ch3x3: 224, ch5x5red: 24, ch5x5: 64, pool_proj: 64}
          - {name: inception4c, type: inception_googlenet, in_channels: 512, ch1x1: 128, ch3x3red: 128, ch3x3: 256, ch5x5red: 24, ch5x5: 64, pool_proj: 64}
          - {name: inception4d, type: inception_googlenet, in_channels: 512, ch1x1: 112, ch3x3red: 144, ch3x3: 288, ch5x5red: 32, ch5x5: 64, pool_proj: 64}
          - {name: inception4e, type: inception_googlenet, in_channels: 528, ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, pool_proj: 128}
          - {name: maxpool4, type: maxpool2d, kernel_size: 2, stride: 2, ceil_mode: true}
          - {name: inception5a, type: inception_googlenet, in_channels: 832, ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, pool_proj: 128}
          - {name: inception5b, type: inception_googlenet, in_channels: 832, ch1x1: 384, ch3x3red: 192, ch3x3: 384, ch5x5red: 48, ch5x5: 128, pool_proj: 128}
          # torchvision registers the auxiliary classifiers here, so their weights come here in the state_dict
          - group: aux1
            if: $aux_logits
            inputs: inception4a
            vars: {aux_in: 512}
            layers: &aux
              - {name: pool, type: adaptive_avgpool2d, output_size: [4, 4]}
              - {name: conv, type: basic_conv2d, in_channels: $aux_in, out_channels: 128, kernel_size: 1}
              - {name: flatten, type: flatten}
              - {name: fc1, type: linear, in_features: 2048, out_features: 1024}
              - {name: relu, type: relu}
              - {name: dropout, type: dropout, p: $dropout_aux}
              - {name: fc2, type: linear, in_features: 1024, out_features: $num_classes}
          - group: aux2
            if: $aux_logits
            inputs: inception4d
            vars: {aux_in: 528}
            layers: *aux
          - {name: avgpool, type: adaptive_avgpool2d, output_size: 1, inputs: inception5b}
          - {name: flatten, type: flatten}
          - {name: dropout, type: dropout, p: $dropout}
          - {name: fc, type: linear, in_features: 1024, out_features: $num_classes}
        output: fc

        """
}
