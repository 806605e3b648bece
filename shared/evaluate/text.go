package evaluate

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxHeaderRunes bounds confusion-matrix column headers in the terminal table, so that 15
// classes with long names still fit a wide terminal. Row labels carry the full names in
// the same order.
const maxHeaderRunes = 12

// WriteText writes r as plain-text tables for a terminal.
func WriteText(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	tw := &textWriter{w: w}

	tw.printf("Model report\n")
	meta := [][]string{
		{"model version", r.ModelVersion},
		{"created", r.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC")},
		{"algorithm", r.Algorithm},
	}
	if r.Validation != "" {
		meta = append(meta, []string{"validation", r.Validation})
	}
	tw.table("  ", nil, []bool{false, false}, meta)
	total := 0
	for _, pc := range r.PerClass {
		total += pc.Support
	}
	tw.printf("\nAccuracy %s   Macro-F1 %s   (%d validation windows, %d classes)\n",
		f3(r.Accuracy), f3(r.MacroF1), total, len(r.Classes))

	tw.printf("\nConfusion matrix (rows: actual, columns: predicted)\n")
	header := []string{"actual \\ predicted"}
	align := []bool{false}
	for _, c := range r.Classes {
		header = append(header, truncate(c, maxHeaderRunes))
		align = append(align, true)
	}
	rows := make([][]string, len(r.Classes))
	for i, c := range r.Classes {
		rows[i] = append(rows[i], c)
		for _, v := range r.ConfusionMatrix[i] {
			rows[i] = append(rows[i], strconv.Itoa(v))
		}
	}
	tw.table("  ", header, align, rows)

	tw.printf("\nPer class\n")
	rows = rows[:0]
	for _, pc := range r.PerClass {
		rows = append(rows, []string{pc.Class, f3(pc.Precision), f3(pc.Recall), f3(pc.F1), strconv.Itoa(pc.Support)})
	}
	tw.table("  ", []string{"class", "precision", "recall", "F1", "support"}, []bool{false, true, true, true, true}, rows)

	tw.printf("\nAnomaly detection (a window is flagged when its score > threshold)\n")
	if len(r.Anomaly) == 0 {
		tw.printf("  no anomaly results\n")
	} else {
		rows = rows[:0]
		for _, a := range r.Anomaly {
			rows = append(rows, []string{a.Type, f3(a.Threshold), f3(a.Recall), f3(a.FalsePositiveRate),
				strconv.Itoa(a.FaultWindows), strconv.Itoa(a.NormalWindows)})
		}
		tw.table("  ", []string{"type", "threshold", "recall", "false-positive rate", "fault windows", "normal windows"},
			[]bool{false, true, true, true, true, true}, rows)
	}

	tw.printf("\nLearning curve\n")
	if len(r.LearningCurve) == 0 {
		tw.printf("  no learning curve\n")
	} else {
		rows = rows[:0]
		for _, p := range r.LearningCurve {
			rows = append(rows, []string{strconv.Itoa(p.TrainPods), f3(p.Accuracy), f3(p.MacroF1)})
		}
		tw.table("  ", []string{"training pods", "accuracy", "macro-F1"}, []bool{true, true, true}, rows)
	}

	tw.printf("\nTraining data: %d windows\n", r.Training.Windows)
	rows = rows[:0]
	for _, typ := range slices.Sorted(maps.Keys(r.Training.PodsPerType)) {
		rows = append(rows, []string{typ, strconv.Itoa(r.Training.PodsPerType[typ])})
	}
	if len(rows) > 0 {
		tw.table("  ", []string{"type", "pods"}, []bool{false, true}, rows)
	}
	if ex := exclusions(r.Training.ExcludedPods); len(ex) > 0 {
		tw.printf("\nExcluded pods\n")
		rows = rows[:0]
		for _, e := range ex {
			rows = append(rows, []string{e.Reason, e.Type, strconv.Itoa(e.Pods)})
		}
		tw.table("  ", []string{"reason", "type", "pods"}, []bool{false, false, true}, rows)
	}
	if len(r.Training.ExcludedWindows) > 0 {
		tw.printf("\nExcluded windows\n")
		rows = rows[:0]
		for _, reason := range slices.Sorted(maps.Keys(r.Training.ExcludedWindows)) {
			rows = append(rows, []string{reason, strconv.Itoa(r.Training.ExcludedWindows[reason])})
		}
		tw.table("  ", []string{"reason", "windows"}, []bool{false, true}, rows)
	}
	return tw.err
}

// exclusion is one row of the excluded-pods table.
type exclusion struct {
	Reason, Type string
	Pods         int
}

// exclusions flattens reason -> type -> count into rows sorted by reason, then type, so
// that output does not depend on map order.
func exclusions(m map[string]map[string]int) []exclusion {
	var out []exclusion
	for _, reason := range slices.Sorted(maps.Keys(m)) {
		for _, typ := range slices.Sorted(maps.Keys(m[reason])) {
			out = append(out, exclusion{Reason: reason, Type: typ, Pods: m[reason][typ]})
		}
	}
	return out
}

func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// textWriter keeps the first write error so the rendering code can stay linear.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

// table writes aligned columns; right[i] right-aligns column i (numbers). header may be
// nil. Widths count runes, not bytes, so non-ASCII names stay aligned. Trailing spaces are
// trimmed so golden files and terminals agree.
func (t *textWriter) table(indent string, header []string, right []bool, rows [][]string) {
	all := rows
	if header != nil {
		all = append([][]string{header}, rows...)
	}
	width := make([]int, len(right))
	for _, row := range all {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, row := range all {
		b.Reset()
		b.WriteString(indent)
		for i, cell := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if right[i] {
				b.WriteString(pad + cell)
			} else {
				b.WriteString(cell + pad)
			}
		}
		t.printf("%s\n", strings.TrimRight(b.String(), " "))
	}
}
