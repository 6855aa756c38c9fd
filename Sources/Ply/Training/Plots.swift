import Foundation

/// Pictures of a finished run: loss and accuracy per epoch, and the confusion matrix,
/// as SVG files (any browser shows them) plus the matrix as text.
public enum Plots {
    /// The files `write` puts in the output directory.
    public static let fileNames = ["training.svg", "confusion.txt", "confusion.svg"]

    /// Writes `training.svg`, `confusion.svg` and `confusion.txt` into `directory`. The
    /// confusion matrix is labelled with `classNames` when given (one per class, e.g.
    /// `ImageDataset.classNames`), else with class indices.
    public static func write(summary: TrainingSummary, classes: Int, to directory: String, classNames: [String]? = nil) throws {
        func put(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw PlyError.invalid("cannot write \(path): \(describeFileProblem(error))")
            }
        }
        try put("training.svg", trainingCurves(losses: summary.epochLosses, accuracies: summary.trainingAccuracies,
                                               validationLosses: summary.validationLosses,
                                               validationAccuracies: summary.validationAccuracies))
        if let confusion = summary.confusion {
            let names = classNames?.count == confusion.count ? classNames : nil
            try put("confusion.txt", confusionText(confusion, classNames: names))
            try put("confusion.svg", confusionSVG(confusion, classNames: names))
        }
    }

    /// The confusion matrix as an aligned text table (rows: true class, columns: predicted).
    /// With `classNames` (one per row) each row is labelled `index name`; columns keep the index.
    public static func confusionText(_ m: [[Int]], classNames: [String]? = nil) -> String {
        let width = max(5, (m.flatMap { $0 }.max() ?? 0).description.count + 1)
        func cell(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        let names = classNames?.count == m.count ? classNames : nil
        let labels = m.indices.map { i in names.map { "\(i) \($0[i])" } ?? String(i) }
        let labelWidth = max(width, (labels.map(\.count).max() ?? 0) + 1)
        func label(_ s: String) -> String {
            names == nil ? cell(s) : s + String(repeating: " ", count: max(0, labelWidth - s.count))
        }
        var out = "true \\ predicted\n" + label("") + m.indices.map { cell(String($0)) }.joined() + " recall\n"
        for (i, row) in m.enumerated() {
            let total = row.reduce(0, +)
            let recall = total > 0 ? String(format: "%.1f%%", 100 * Double(row[i]) / Double(total)) : "-"
            out += label(labels[i]) + row.map { cell(String($0)) }.joined() + " " + recall + "\n"
        }
        return out
    }

    /// `text` with XML's special characters escaped (class names come from folder names).
    static func xmlEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Loss (left axis) and accuracy (right axis) per epoch: the training curves solid, the
    /// held-out set's (`validationLosses`, `validationAccuracies`, when given) dashed in the same
    /// colours. Non-finite values (epochs without a measurement) leave a gap.
    public static func trainingCurves(losses: [Double], accuracies: [Double],
                                      validationLosses: [Double] = [], validationAccuracies: [Double] = []) -> String {
        // The legend is a row under the axis, clear of the curves.
        let w = 640.0, h = 430.0, left = 60.0, right = 60.0, top = 40.0, bottom = 80.0
        let pw = w - left - right, ph = h - top - bottom
        let n = max(losses.count, accuracies.count, validationLosses.count, validationAccuracies.count)
        let maxLoss = max((losses + validationLosses).filter(\.isFinite).max() ?? 1, 1e-9)
        func x(_ i: Int) -> Double { left + (n <= 1 ? pw / 2 : pw * Double(i) / Double(n - 1)) }
        func polyline(_ values: [Double], scale: Double, color: String, dashed: Bool = false) -> String {
            func y(_ v: Double) -> Double { top + ph - ph * min(max(v / scale, 0), 1) }
            // One polyline per run of finite values.
            var runs: [[(Int, Double)]] = [[]]
            for (i, v) in values.enumerated() {
                if v.isFinite { runs[runs.count - 1].append((i, v)) } else if !(runs.last?.isEmpty ?? true) { runs.append([]) }
            }
            let dash = dashed ? " stroke-dasharray=\"6,4\"" : ""
            var out = ""
            for run in runs where !run.isEmpty {
                let pts = run.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }
                out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash) points=\"\(pts.joined(separator: " "))\"/>"
                out += run.map {
                    String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"\(dashed ? "white" : color)\" stroke=\"\(color)\"/>",
                           x($0.0), y($0.1))
                }.joined()
            }
            return out
        }
        let validation = !validationLosses.isEmpty || !validationAccuracies.isEmpty
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(Int(w / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
            + (validation ? "Training and validation loss and accuracy per epoch" : "Training loss and accuracy per epoch") + "</text>"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>"
        for k in 0...4 {
            let y = top + ph * Double(k) / 4
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            svg += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" fill=\"#c0392b\">%.3f</text>", left - 6, y + 4, maxLoss * Double(4 - k) / 4)
            svg += String(format: "<text x=\"%.0f\" y=\"%.0f\" fill=\"#2471a3\">%.0f%%</text>", left + pw + 6, y + 4, 100 * Double(4 - k) / 4)
        }
        for i in 0..<n { svg += String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>", x(i), top + ph + 18, i + 1) }
        svg += "<text x=\"\(Int(left + pw / 2))\" y=\"\(Int(top + ph + 36))\" text-anchor=\"middle\">epoch</text>"
        svg += polyline(losses, scale: maxLoss, color: "#c0392b") + polyline(accuracies, scale: 100, color: "#2471a3")
        svg += polyline(validationLosses, scale: maxLoss, color: "#c0392b", dashed: true)
            + polyline(validationAccuracies, scale: 100, color: "#2471a3", dashed: true)
        var entries = [("mean training loss", "#c0392b", false), ("training accuracy", "#2471a3", false)]
        if validation { entries += [("validation loss", "#c0392b", true), ("validation accuracy", "#2471a3", true)] }
        for (i, entry) in entries.enumerated() {
            let x = 20 + Double(i) * 150, y = h - 14
            svg += "<line x1=\"\(x)\" y1=\"\(y - 4)\" x2=\"\(x + 24)\" y2=\"\(y - 4)\" stroke=\"\(entry.1)\" stroke-width=\"2\""
                + (entry.2 ? " stroke-dasharray=\"6,4\"" : "") + "/>"
            svg += "<text x=\"\(x + 30)\" y=\"\(y)\" fill=\"\(entry.1)\">\(entry.0)</text>"
        }
        return svg + "</svg>\n"
    }

    /// The confusion matrix as a heat map with counts, its rows and columns labelled with
    /// `classNames` when given (one per class), else with class indices.
    public static func confusionSVG(_ m: [[Int]], classNames: [String]? = nil) -> String {
        let names = classNames?.count == m.count ? classNames : nil
        let labels = m.indices.map { i in xmlEscaped(names?[i] ?? String(i)) }
        // About 6.5 px per character at 11 px: the margins fit the longest name.
        let longest = (names ?? []).map(\.count).max() ?? 0
        let k = m.count, cellSize = 40, margin = max(70, Int(Double(longest) * 6.5) + 20)
        // Rotated column names need the title's line above them.
        let topMargin = margin + (names == nil ? 0 : 24)
        let size = margin + k * cellSize + 20, height = topMargin + k * cellSize + 20
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(size)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(size / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Confusion matrix (rows: true, columns: predicted)</text>"
        for (i, row) in m.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (j, v) in row.enumerated() {
                let f = Double(v) / Double(total)
                let shade = Int(255 * (1 - f))
                let x = margin + j * cellSize, y = topMargin + i * cellSize
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellSize)\" height=\"\(cellSize)\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"#ccc\"/>"
                svg += "<text x=\"\(x + cellSize / 2)\" y=\"\(y + cellSize / 2 + 4)\" text-anchor=\"middle\" fill=\"\(f > 0.5 ? "white" : "black")\">\(v)</text>"
            }
            svg += "<text x=\"\(margin - 6)\" y=\"\(topMargin + i * cellSize + cellSize / 2 + 4)\" text-anchor=\"end\">\(labels[i])</text>"
            let cx = margin + i * cellSize + cellSize / 2, cy = topMargin - 6
            svg += names == nil
                ? "<text x=\"\(cx)\" y=\"\(cy)\" text-anchor=\"middle\">\(labels[i])</text>"
                : "<text x=\"\(cx)\" y=\"\(cy)\" text-anchor=\"start\" transform=\"rotate(-60 \(cx) \(cy))\">\(labels[i])</text>"
        }
        return svg + "</svg>\n"
    }
}
