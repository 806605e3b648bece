package model

import (
	"strings"
	"testing"
)

func TestEpisodes(t *testing.T) {
	tests := []struct {
		name   string
		raise  int
		clear  int
		resume bool   // state before the inputs
		inputs string // a: anomalous, n: normal
		want   string // per input: . unchanged, R raised, C cleared
	}{
		{"raise after two", 2, 2, false, "aana", ".R.."},
		{"isolated spikes never raise", 2, 2, false, "ananan", "......"},
		{"clear after two normal", 2, 2, false, "aanan" + "n", ".R...C"},
		{"one window raises and clears", 1, 1, false, "anan", "RCRC"},
		{"resumed open episode clears", 2, 2, true, "nn", ".C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Episodes{Raise: tt.raise, Clear: tt.clear}
			e.Resume(tt.resume)
			var got strings.Builder
			for _, c := range tt.inputs {
				switch e.Observe(c == 'a') {
				case Raised:
					got.WriteByte('R')
				case Cleared:
					got.WriteByte('C')
				default:
					got.WriteByte('.')
				}
			}
			if got.String() != tt.want {
				t.Errorf("transitions %q, want %q", got.String(), tt.want)
			}
		})
	}
}
