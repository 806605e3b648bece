package stacktest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// LogSummary shortens a server log for a failing test's output: each message (the line without
// a leading RFC 3339 timestamp) is shown once, at its last occurrence, with how often it was
// logged, and only the last max distinct messages are kept. CI keeps only the end of a test's
// output, and a dependency that logs the same error every second (Telegraf while InfluxDB is
// down) would otherwise push the test's own verdict out of it.
func LogSummary(log string, max int) string {
	type entry struct {
		line  string // the last occurrence, timestamp included
		count int
		last  int // line number of the last occurrence
	}
	if strings.TrimSpace(log) == "" {
		return ""
	}
	byMsg := map[string]*entry{}
	for i, line := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		msg := line
		if ts, rest, ok := strings.Cut(line, " "); ok {
			if _, err := time.Parse(time.RFC3339, ts); err == nil {
				msg = rest
			}
		}
		e := byMsg[msg]
		if e == nil {
			e = &entry{}
			byMsg[msg] = e
		}
		e.line, e.last = line, i
		e.count++
	}
	entries := slices.SortedFunc(maps.Values(byMsg), func(a, b *entry) int { return cmp.Compare(a.last, b.last) })
	var b strings.Builder
	if len(entries) > max {
		fmt.Fprintf(&b, "[%d earlier distinct messages left out]\n", len(entries)-max)
		entries = entries[len(entries)-max:]
	}
	for _, e := range entries {
		b.WriteString(e.line)
		if e.count > 1 {
			fmt.Fprintf(&b, "  [logged %d times]", e.count)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
