import ArgumentParser
import Foundation
import Ply

/// `ply bench-data`: how fast the data side runs — decoding (and transforming) a data
/// directory's training set, and assembling augmented batches from it — for
/// `Benchmarks/image-folders` and BENCHMARKS.md.
struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Time loading a data directory's training set and assembling augmented batches.",
        discussion: """
            Each timed run loads the training split of --data with the transforms given (decoding \
            images on --threads threads), then iterates one epoch of batches of --batch-size on the \
            calling thread with --random-crop/--horizontal-flip. Prints one line per run and \
            `result:` lines with the medians: decode images/s, images/s per thread, batch images/s. \
            With --cache-decoded off the load only checks the images and each batch decodes its own \
            (on --threads threads): the batch rate is then the streaming loader's.
            """)

    @Option(help: "Data directory (IDX, CIFAR or image folders).") var data: String
    @Option(help: "Decoding threads (default: all cores).") var threads: Int?
    @Option(help: "Timed runs (the median is reported).") var runs = 3
    @Option(name: .customLong("batch-size"), help: "Images per batch for the batch-assembly timing.") var batchSize = 128
    @OptionGroup(title: "Data and transforms") var dataOptions: DataOptionGroup
    @OptionGroup(title: "Augmentation") var augmentationOptions: AugmentationOptionGroup

    func validate() throws {
        try checkNotEmpty("--data", data)
        try checkOption("--threads", threads, in: OptionLimits.threads)
        try checkOption("--runs", runs, in: 1...1000)
        try checkOption("--batch-size", batchSize, in: OptionLimits.batch)
    }

    func run() throws {
        do {
            var decodeRates: [Double] = [], batchRates: [Double] = []
            var streamed = false
            let directory = try DataDirectory(path: data)
            let workers = threads ?? ProcessInfo.processInfo.activeProcessorCount
            for run in 1...runs {
                let start = Date()
                let loaded = try directory.load(options: dataOptions.options(seed: 1, threads: workers), splits: .train)
                let seconds = Date().timeIntervalSince(start)
                guard let train = loaded.train, train.count > 0 else { throw TrainingError.emptyDataset(role: "training set", count: 0) }
                streamed = train.stream != nil
                let augmentation = augmentationOptions.augmentation(normalization: loaded.normalization)
                let loader = BatchLoader(dataset: train, batchSize: batchSize, seed: 1, epoch: run, prefetch: 0,
                                         augmentation: augmentation)
                let batchStart = Date()
                var images = 0
                var batches = loader.makeIterator()
                while let batch = try batches.nextBatch() { images += batch.count }
                let batchSeconds = Date().timeIntervalSince(batchStart)
                decodeRates.append(Double(train.count) / seconds)
                batchRates.append(Double(images) / batchSeconds)
                print(String(format: "run %d: %d images (%dx%dx%d, %@, %@) loaded in %.2f s = %.0f images/s on %d thread(s); batches %.0f images/s",
                             run, train.count, train.channels, train.height, train.width, directory.format.rawValue,
                             train.stream == nil ? "cached" : "streamed",
                             seconds, decodeRates.last!, workers, batchRates.last!))
            }
            let decode = decodeRates.sorted()[decodeRates.count / 2], batches = batchRates.sorted()[batchRates.count / 2]
            print(String(format: "result: load %.0f images/s, %.0f images/s per thread (%d threads); batch assembly %.0f images/s (%@)",
                         decode, decode / Double(workers), workers, batches, streamed ? "streamed: decoding on \(workers) thread(s)" : "1 thread"))
        } catch { throw fail(error) }
    }
}
