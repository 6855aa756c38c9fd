import Foundation

/// Pictures of a finished run: loss and accuracy per epoch, and the confusion matrix,
/// as SVG files (any browser shows them) plus the matrix as text.
public enum Plots {
    /// The files `write` puts in the output directory.
    public static let fileNames = ["training.svg", "confusion.txt", "confusion.svg"]

    /// Writes `training.svg`, `confusion.svg` and `confusion.txt` into `directory`.
    public static func write(summary: TrainingSummary, classes: Int, to directory: String) throws {
        func put(_ name: String, _ text: String) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw PlyError.invalid("cannot write \(path): \(describeFileProblem(error))")
            }
        }
        try put("training.svg", trainingCurves(losses: summary.epochLosses, accuracies: summary.trainingAccuracies))
        if let confusion = summary.confusion {
            try put("confusion.txt", confusionText(confusion))
            try put("confusion.svg", confusionSVG(confusion))
        }
    }

    /// The confusion matrix as an aligned text table (rows: true class, columns: predicted).
    public static func confusionText(_ m: [[Int]]) -> String {
        let width = max(5, (m.flatMap { $0 }.max() ?? 0).description.count + 1)
        func cell(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var out = "true \\ predicted\n" + cell("") + m.indices.map { cell(String($0)) }.joined() + " recall\n"
        for (i, row) in m.enumerated() {
            let total = row.reduce(0, +)
            let recall = total > 0 ? String(format: "%.1f%%", 100 * Double(row[i]) / Double(total)) : "-"
            out += cell(String(i)) + row.map { cell(String($0)) }.joined() + " " + recall + "\n"
        }
        return out
    }

    /// Loss (left axis) and training accuracy (right axis) per epoch.
    public static func trainingCurves(losses: [Double], accuracies: [Double]) -> String {
        let w = 640.0, h = 400.0, left = 60.0, right = 60.0, top = 40.0, bottom = 50.0
        let pw = w - left - right, ph = h - top - bottom
        let n = max(losses.count, accuracies.count)
        let maxLoss = max(losses.filter(\.isFinite).max() ?? 1, 1e-9)
        func x(_ i: Int) -> Double { left + (n <= 1 ? pw / 2 : pw * Double(i) / Double(n - 1)) }
        func polyline(_ values: [Double], scale: Double, color: String) -> String {
            let pts = values.enumerated().map { String(format: "%.1f,%.1f", x($0.offset), top + ph - ph * min($0.element / scale, 1)) }
            let dots = values.enumerated().map {
                String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"\(color)\"/>", x($0.offset), top + ph - ph * min($0.element / scale, 1))
            }
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>" + dots.joined()
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(Int(w / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">Training loss and accuracy per epoch</text>"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>"
        for k in 0...4 {
            let y = top + ph * Double(k) / 4
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            svg += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\" fill=\"#c0392b\">%.3f</text>", left - 6, y + 4, maxLoss * Double(4 - k) / 4)
            svg += String(format: "<text x=\"%.0f\" y=\"%.0f\" fill=\"#2471a3\">%.0f%%</text>", left + pw + 6, y + 4, 100 * Double(4 - k) / 4)
        }
        for i in 0..<n { svg += String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>", x(i), top + ph + 18, i + 1) }
        svg += "<text x=\"\(Int(left + pw / 2))\" y=\"\(Int(h - 10))\" text-anchor=\"middle\">epoch</text>"
        svg += polyline(losses, scale: maxLoss, color: "#c0392b") + polyline(accuracies, scale: 100, color: "#2471a3")
        svg += "<text x=\"\(left + 10)\" y=\"\(top + 16)\" fill=\"#c0392b\">mean training loss</text>"
        svg += "<text x=\"\(left + 10)\" y=\"\(top + 32)\" fill=\"#2471a3\">training accuracy</text></svg>\n"
        return svg
    }

    /// The confusion matrix as a heat map with counts.
    public static func confusionSVG(_ m: [[Int]]) -> String {
        let k = m.count, cellSize = 40, margin = 70
        let size = margin + k * cellSize + 20
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(size)\" height=\"\(size)\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(size / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Confusion matrix (rows: true, columns: predicted)</text>"
        for (i, row) in m.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (j, v) in row.enumerated() {
                let f = Double(v) / Double(total)
                let shade = Int(255 * (1 - f))
                let x = margin + j * cellSize, y = margin + i * cellSize
                svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellSize)\" height=\"\(cellSize)\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"#ccc\"/>"
                svg += "<text x=\"\(x + cellSize / 2)\" y=\"\(y + cellSize / 2 + 4)\" text-anchor=\"middle\" fill=\"\(f > 0.5 ? "white" : "black")\">\(v)</text>"
            }
            svg += "<text x=\"\(margin - 6)\" y=\"\(margin + i * cellSize + cellSize / 2 + 4)\" text-anchor=\"end\">\(i)</text>"
            svg += "<text x=\"\(margin + i * cellSize + cellSize / 2)\" y=\"\(margin - 6)\" text-anchor=\"middle\">\(i)</text>"
        }
        return svg + "</svg>\n"
    }
}
