package stacktest

import "testing"

func TestLogSummary(t *testing.T) {
	tests := []struct {
		name string
		log  string
		max  int
		want string
	}{
		{
			name: "repeats folded at their last occurrence",
			log: "2026-11-22T02:29:12Z E! write failed\n" +
				"2026-11-22T02:29:12Z W! buffer overflow\n" +
				"2026-11-22T02:29:13Z E! write failed\n" +
				"2026-11-22T02:29:14Z I! stopping\n",
			max: 10,
			want: "2026-11-22T02:29:12Z W! buffer overflow\n" +
				"2026-11-22T02:29:13Z E! write failed  [logged 2 times]\n" +
				"2026-11-22T02:29:14Z I! stopping\n",
		},
		{
			name: "only the last max messages",
			log:  "a\nb\nc\nb\n",
			max:  2,
			want: "[1 earlier distinct messages left out]\nc\nb  [logged 2 times]\n",
		},
		{
			name: "a first word that is no timestamp is part of the message",
			log:  "E! one\nE! two\n",
			max:  5,
			want: "E! one\nE! two\n",
		},
		{name: "empty log", log: "", max: 5, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LogSummary(tt.log, tt.max); got != tt.want {
				t.Errorf("LogSummary() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
