package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Var describes one environment variable of a configuration struct, for documentation.
type Var struct {
	Name        string
	Default     string // envDefault; empty for secrets and for variables without one
	Description string // the `desc` tag
	Secret      bool
}

// Describe lists the environment variables of the configuration struct v (a struct, a pointer to
// one, or a typed nil pointer) in field order, including nested and embedded structs. Every secret
// is followed by its NAME_FILE alternative. v's values are not read.
func Describe(v any) []Var {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var vars []Var
	walk(t, reflect.Value{}, "", func(l leaf) {
		d := Var{Name: l.key, Description: l.field.Tag.Get("desc"), Secret: l.secret}
		if !l.secret {
			d.Default = l.field.Tag.Get("envDefault")
		}
		vars = append(vars, d)
		if l.secret {
			vars = append(vars, Var{
				Name:        l.key + FileSuffix,
				Description: "path of a file holding " + l.key + " (instead of setting it directly)",
			})
		}
	})
	return vars
}

// Redacted returns a slog.LogValuer that logs the configuration struct v as a group of
// VARIABLE=value attributes, with secrets shown as "[redacted]" (or "" when unset) and passwords in
// URLs masked. Log the configuration at start with slog.Any("config", config.Redacted(cfg)).
func Redacted(v any) slog.LogValuer { return redacted{v} }

type redacted struct{ v any }

// LogValue implements slog.LogValuer.
func (r redacted) LogValue() slog.Value {
	rv := reflect.ValueOf(r.v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return slog.StringValue(fmt.Sprintf("<%T: not a struct>", r.v))
	}
	var attrs []slog.Attr
	walk(rv.Type(), rv, "", func(l leaf) {
		attrs = append(attrs, slog.String(l.key, logText(l)))
	})
	return slog.GroupValue(attrs...)
}

func logText(l leaf) string {
	if !l.value.IsValid() {
		return ""
	}
	if l.secret {
		if l.value.IsZero() {
			return ""
		}
		return redactedText
	}
	switch x := l.value.Interface().(type) {
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	case string:
		return maskURL(x)
	}
	if l.value.Kind() == reflect.Slice {
		parts := make([]string, l.value.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(l.value.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(l.value.Interface())
}

// maskURL hides the password of a URL with credentials; anything else is returned as is.
func maskURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
