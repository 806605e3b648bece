package config

import "log/slog"

const redactedText = "[redacted]"

// Secret is a string that never prints itself: fmt verbs, slog and JSON show "[redacted]" (or ""
// when unset, so logs still tell whether it was given). Use Reveal where the value is needed.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redactedText
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps encoding/json and friends from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
