package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"text/tabwriter"
)

// ParseHTTPURL parses an http or https URL with a host, the shape of every URL setting; the
// error says what is wrong with it, for Invalid to name the variable.
func ParseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err
		}
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("scheme must be http or https")
	case u.Host == "":
		return nil, errors.New("host is missing")
	}
	return u, nil
}

// ParseLogLevel maps a LOG_LEVEL value to a slog level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error")
	}
	return l, nil
}

// WriteEnvTable writes the environment variables of the configuration struct v (see Describe)
// as an aligned table with their defaults: what a service's `env` command prints.
func WriteEnvTable(w io.Writer, v any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tDESCRIPTION")
	for _, d := range Describe(v) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.Default, d.Description)
	}
	return tw.Flush()
}
