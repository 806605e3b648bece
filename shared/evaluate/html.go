package evaluate

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
)

//go:embed report.html.tmpl
var reportTemplate string

// WriteHTML writes r as one self-contained HTML page: inline CSS and SVG, no scripts, no
// external assets, so it can be attached to a ticket or opened from a file. The markup is
// also well-formed XML, which the tests check.
func WriteHTML(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	// Parsed per call: it costs well under a millisecond and keeps the package free of
	// package-level state.
	t, err := template.New("report").Funcs(template.FuncMap{
		"f3":  f3,
		"pct": func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" },
	}).Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("evaluate: parsing HTML template: %w", err)
	}
	if err := t.Execute(w, newHTMLView(r)); err != nil {
		return fmt.Errorf("evaluate: writing HTML report: %w", err)
	}
	return nil
}

// htmlView is the report plus the precomputed geometry of its charts, so that the
// template only places elements and holds no arithmetic.
type htmlView struct {
	R        *Report
	Created  string
	Total    int
	Heat     heatMap
	Curve    *lineChart // nil without learning-curve points
	PodTypes []podCount
	Excluded []exclusion
	// ExcludedWindows is Training.ExcludedWindows in reason order.
	ExcludedWindows []windowExclusion
}

type windowExclusion struct {
	Reason  string
	Windows int
}

type podCount struct {
	Type string
	Pods int
}

func newHTMLView(r *Report) htmlView {
	v := htmlView{
		R:        r,
		Created:  r.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"),
		Heat:     newHeatMap(r.Classes, r.ConfusionMatrix),
		Excluded: exclusions(r.Training.ExcludedPods),
	}
	for _, pc := range r.PerClass {
		v.Total += pc.Support
	}
	for _, typ := range slices.Sorted(maps.Keys(r.Training.PodsPerType)) {
		v.PodTypes = append(v.PodTypes, podCount{typ, r.Training.PodsPerType[typ]})
	}
	for _, reason := range slices.Sorted(maps.Keys(r.Training.ExcludedWindows)) {
		v.ExcludedWindows = append(v.ExcludedWindows, windowExclusion{reason, r.Training.ExcludedWindows[reason]})
	}
	if len(r.LearningCurve) > 0 {
		c := newLineChart(r.LearningCurve)
		v.Curve = &c
	}
	return v
}

// Heat-map layout constants, in SVG user units (px). charWidth is an estimate of one
// character of the 12px label font; labels get that much room per rune.
const (
	maxLabelRunes = 24
	charWidth     = 7
)

type heatMap struct {
	Width, Height int
	// Grid is the matrix area.
	GridX, GridY, GridSize    int
	Cells                     []heatCell
	RowLabels, ColLabels      []axisLabel
	ActualX, ActualY          int // centre of the rotated "actual" axis title
	PredictedX, PredictedY    int
	LegendX, LegendY, LegendW int
	FontSize                  int
}

type heatCell struct {
	X, Y, Size int
	TextX      int
	TextY      int
	Count      int
	Fill       string
	Ink        string // text colour, chosen for contrast with Fill
	Diagonal   bool
	Title      string
}

type axisLabel struct {
	X, Y int
	Text string
	Full string
}

func newHeatMap(classes []string, m [][]int) heatMap {
	n := len(classes)
	// Cells shrink with the class count so 15 classes still fit a laptop screen, but never
	// below what a four-digit count needs.
	cs := min(64, max(36, 640/max(n, 1)))
	longest := 0
	for _, c := range classes {
		longest = max(longest, len([]rune(truncate(c, maxLabelRunes))))
	}
	labelW := longest*charWidth + 8
	// Column labels are rotated -45°, so they need labelW·sin45 above the grid and reach
	// that far right of their column.
	diag := int(math.Ceil(float64(labelW) * math.Sqrt2 / 2))
	h := heatMap{
		GridX:    28 + labelW,
		GridY:    28 + diag,
		GridSize: n * cs,
		FontSize: 13,
	}
	if cs < 44 {
		h.FontSize = 11
	}
	// The colour legend is a fixed 200 wide so its two captions never overlap, even when
	// two classes make the grid narrower than that.
	h.LegendX, h.LegendY, h.LegendW = h.GridX, h.GridY+h.GridSize+18, 200
	h.Width = max(h.GridX+h.GridSize+max(diag-cs/2, 0), h.LegendX+h.LegendW) + 16
	h.Height = h.LegendY + 34
	h.ActualX, h.ActualY = 12, h.GridY+h.GridSize/2
	h.PredictedX, h.PredictedY = h.GridX+h.GridSize/2, 14

	for a := range n {
		rowSum := 0
		for _, v := range m[a] {
			rowSum += v
		}
		for p := range n {
			frac := 0.0
			if rowSum > 0 {
				frac = float64(m[a][p]) / float64(rowSum)
			}
			cell := heatCell{
				X: h.GridX + p*cs, Y: h.GridY + a*cs, Size: cs,
				Count: m[a][p], Fill: blues(frac), Ink: "#1b1b1b", Diagonal: a == p,
				Title: fmt.Sprintf("actual %s, predicted %s: %d (%.1f%% of %s)", classes[a], classes[p], m[a][p], 100*frac, classes[a]),
			}
			cell.TextX, cell.TextY = cell.X+cs/2, cell.Y+cs/2+h.FontSize*4/10
			switch {
			case frac > 0.5:
				cell.Ink = "#ffffff"
			case m[a][p] == 0:
				cell.Ink = "#b8b8b8"
			}
			h.Cells = append(h.Cells, cell)
		}
	}
	for i, c := range classes {
		t := truncate(c, maxLabelRunes)
		h.RowLabels = append(h.RowLabels, axisLabel{X: h.GridX - 8, Y: h.GridY + i*cs + cs/2 + 4, Text: t, Full: c})
		h.ColLabels = append(h.ColLabels, axisLabel{X: h.GridX + i*cs + cs/2, Y: h.GridY - 8, Text: t, Full: c})
	}
	return h
}

// blues maps a share in [0,1] to a colour of the Blues scale.
func blues(frac float64) string {
	// ColorBrewer's sequential "Blues": ordered by lightness, so it reads in greyscale and
	// for colour-blind readers.
	bluesStops := [...][3]float64{
		{0xf7, 0xfb, 0xff}, {0xde, 0xeb, 0xf7}, {0xc6, 0xdb, 0xef}, {0x9e, 0xca, 0xe1}, {0x6b, 0xae, 0xd6},
		{0x42, 0x92, 0xc6}, {0x21, 0x71, 0xb5}, {0x08, 0x51, 0x9c}, {0x08, 0x30, 0x6b},
	}
	if !(frac > 0) { // also catches NaN, which min/max would propagate
		frac = 0
	}
	frac = min(1, frac)
	pos := frac * float64(len(bluesStops)-1)
	i := min(int(pos), len(bluesStops)-2)
	t := pos - float64(i)
	var rgb [3]int
	for k := range rgb {
		rgb[k] = int(math.Round(bluesStops[i][k] + t*(bluesStops[i+1][k]-bluesStops[i][k])))
	}
	return fmt.Sprintf("#%02x%02x%02x", rgb[0], rgb[1], rgb[2])
}

// Learning-curve chart layout, in SVG user units; the legend sits right of the plot.
const (
	chartW, chartH             = 640, 320
	plotL, plotR, plotT, plotB = 60, 500, 20, 270
)

type lineChart struct {
	Width, Height              int
	PlotL, PlotR, PlotT, PlotB int
	TickEnd                    int // lower end of the x-axis tick marks
	XTicks, YTicks             []tick
	Accuracy, MacroF1          series
	Legend                     legend
	XTitleX, XTitleY           int
	YTitleX, YTitleY           int
}

type legend struct {
	X1, X2, Mid, TextX int // line sample from X1 to X2 with its marker at Mid
	Y1, Y2             int // rows for accuracy and macro-F1
}

type tick struct {
	Pos   float64
	Label string
}

type series struct {
	Points string // SVG polyline points
	Marks  []mark
}

type mark struct {
	X, Y  float64
	Title string
}

func newLineChart(curve LearningCurve) lineChart {
	pts := slices.Clone(curve)
	slices.SortStableFunc(pts, func(a, b CurvePoint) int { return a.TrainPods - b.TrainPods })

	xMax := float64(max(pts[len(pts)-1].TrainPods, 1))
	xStep := niceStep(xMax / 5)
	xMax = math.Ceil(xMax/xStep) * xStep

	// The y axis starts below the lowest value rather than at 0, so that the difference
	// between 0.85 and 0.92 — the one that says whether more pods help — is visible.
	lo := 1.0
	for _, p := range pts {
		lo = min(lo, p.Accuracy, p.MacroF1)
	}
	yMin := max(0, math.Floor(lo*10)/10-0.1)
	yStep := 0.1
	if 1-yMin <= 0.4 {
		yStep = 0.05
	}

	c := lineChart{
		Width: chartW, Height: chartH,
		PlotL: plotL, PlotR: plotR, PlotT: plotT, PlotB: plotB,
		TickEnd: plotB + 5,
		Legend:  legend{X1: plotR + 20, X2: plotR + 48, Mid: plotR + 34, TextX: plotR + 56, Y1: plotT + 12, Y2: plotT + 34},
		XTitleX: (plotL + plotR) / 2, XTitleY: plotB + 42,
		YTitleX: 16, YTitleY: (plotT + plotB) / 2,
	}
	xPos := func(v float64) float64 { return plotL + v/xMax*(plotR-plotL) }
	yPos := func(v float64) float64 { return plotB - (v-yMin)/(1-yMin)*(plotB-plotT) }
	for v := 0.0; v <= xMax+xStep/2; v += xStep {
		c.XTicks = append(c.XTicks, tick{Pos: xPos(v), Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	// Count ticks by index: adding 0.05 repeatedly drifts and could drop the 1.0 tick.
	for i := 0; ; i++ {
		v := yMin + float64(i)*yStep
		if v > 1+yStep/2 {
			break
		}
		c.YTicks = append(c.YTicks, tick{Pos: yPos(v), Label: strconv.FormatFloat(v, 'f', 2, 64)})
	}
	add := func(s *series, name string, val func(CurvePoint) float64) {
		for i, p := range pts {
			x, y := xPos(float64(p.TrainPods)), yPos(val(p))
			if i > 0 {
				s.Points += " "
			}
			s.Points += strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(y, 'f', 1, 64)
			s.Marks = append(s.Marks, mark{X: x, Y: y, Title: fmt.Sprintf("%d training pods: %s %.3f", p.TrainPods, name, val(p))})
		}
	}
	add(&c.Accuracy, "accuracy", func(p CurvePoint) float64 { return p.Accuracy })
	add(&c.MacroF1, "macro-F1", func(p CurvePoint) float64 { return p.MacroF1 })
	return c
}

// niceStep rounds a raw tick distance up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return max(m*p, 1) // pods are whole
		}
	}
	return 10 * p
}
