// Package config loads service configuration from environment variables into structs tagged for
// github.com/caarlos0/env/v10, and holds the field groups both services share (InfluxDB, Kubernetes).
//
// Every field carries `env:"NAME"`, `envDefault:"..."` where a default makes sense and
// `desc:"one line"`; Describe turns those tags into the configuration table. A secret field
// (type Secret or tag `secret:"true"`) may instead be given as NAME_FILE, the path of a file holding
// it, which is how Kubernetes Secrets are usually mounted.
package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v10"
)

// FileSuffix is appended to a secret's variable name to name the variable holding a file path.
const FileSuffix = "_FILE"

// VarError is a problem with one environment variable. Its message names the variable and the
// value it had, so an operator can fix the deployment without reading code:
//
//	INFLUXDB_URL="ftp://x": scheme must be http or https
type VarError struct {
	Var    string // variable name, e.g. INFLUXDB_URL
	Value  string // raw value as given; never printed when Secret
	Secret bool
	Err    error
}

// Error formats the variable, its quoted value (or [redacted]) and the problem.
func (e *VarError) Error() string {
	val := fmt.Sprintf("%q", e.Value)
	if e.Secret {
		val = redactedText
	}
	return fmt.Sprintf("%s=%s: %v", e.Var, val, e.Err)
}

// Unwrap returns the underlying problem.
func (e *VarError) Unwrap() error { return e.Err }

// Invalid returns a *VarError for variable name with value, whose problem is formatted from format
// and args. Validate methods use it so all configuration errors read alike.
func Invalid(name, value, format string, args ...any) error {
	return &VarError{Var: name, Value: value, Err: fmt.Errorf(format, args...)}
}

// Validator is implemented by configuration structs that check their values after parsing.
type Validator interface {
	Validate() error
}

// LoadEnv is Load with the process environment.
func LoadEnv(cfg any) error {
	return Load(cfg, env.ToMap(os.Environ()))
}

// Load fills cfg, a pointer to a struct, from environ (variable name -> value), then validates it.
//
// Parsing is done by caarlos0/env one variable at a time: env v10 reports a bad value with the Go
// field name only, which is ambiguous once groups are nested (two Timeout fields) and useless to an
// operator; here every error is a *VarError naming the variable and value. As in env, a variable
// that is unset or empty takes its envDefault. A secret NAME may come from NAME_FILE instead (the
// file's content with surrounding white space trimmed); setting both is an error.
//
// After a clean parse Load calls cfg.Validate() if cfg has one. If it has none (a struct that embeds
// two groups has an ambiguous, hence no, Validate), Load validates each nested struct that has one
// instead, so embedding groups never silently skips their checks. All problems are returned
// together, joined with errors.Join.
func Load(cfg any, environ map[string]string) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", cfg)
	}
	environ, errs := resolveSecretFiles(rv.Elem(), environ)
	walk(rv.Elem().Type(), rv.Elem(), "", func(l leaf) {
		if err := parseLeaf(l, environ); err != nil {
			errs = append(errs, err)
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return validate(rv)
}

// resolveSecretFiles returns environ with every secret NAME_FILE replaced by NAME holding the file's
// content. The input map is not modified.
func resolveSecretFiles(v reflect.Value, environ map[string]string) (map[string]string, []error) {
	var errs []error
	out, cloned := environ, false
	walk(v.Type(), v, "", func(l leaf) {
		if !l.secret {
			return
		}
		fileVar := l.key + FileSuffix
		path := environ[fileVar]
		if path == "" {
			return
		}
		if environ[l.key] != "" {
			errs = append(errs, fmt.Errorf("%s and %s are both set: set only one", l.key, fileVar))
			return
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, &VarError{Var: fileVar, Value: path, Err: err})
			return
		}
		content := strings.TrimSpace(string(b))
		if content == "" {
			errs = append(errs, Invalid(fileVar, path, "file is empty"))
			return
		}
		if !cloned {
			out = make(map[string]string, len(environ)+1)
			maps.Copy(out, environ)
			cloned = true
		}
		out[l.key] = content
	})
	return out, errs
}

// parseLeaf lets env parse the single variable of l by giving it a one-field struct with the same
// type and tags, so any error is known to belong to l.key.
func parseLeaf(l leaf, environ map[string]string) error {
	tmpType := reflect.StructOf([]reflect.StructField{{Name: "V", Type: l.field.Type, Tag: l.field.Tag}})
	tmp := reflect.New(tmpType)
	// Start from the current value: env leaves a field without value or default untouched, and
	// so must we (callers may preset fields before Load).
	tmp.Elem().Field(0).Set(l.value)
	err := env.ParseWithOptions(tmp.Interface(), env.Options{Environment: environ, Prefix: l.prefix})
	if err != nil {
		cause := envCause(err)
		if l.secret {
			// Parser errors quote the input; say only what was expected.
			cause = fmt.Errorf("not a valid %s", l.field.Type)
		}
		return &VarError{Var: l.key, Value: environ[l.key], Secret: l.secret, Err: cause}
	}
	l.value.Set(tmp.Elem().Field(0))
	return nil
}

// envCause strips env's wrapping (which names the Go field) down to what is wrong with the value.
func envCause(err error) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) == 1 {
		err = agg.Errors[0]
	}
	var (
		pe       env.ParseError
		notSet   env.EnvVarIsNotSetError
		empty    env.EmptyEnvVarError
		fileErr  env.LoadFileContentError
		noParser env.NoParserError
	)
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &notSet):
		return errors.New("required but not set")
	case errors.As(err, &empty):
		return errors.New("must not be empty")
	case errors.As(err, &fileErr):
		return fileErr.Err
	case errors.As(err, &noParser):
		return fmt.Errorf("no parser for Go type %s", noParser.Type)
	}
	return err
}

// validate runs Validate on the top-level struct, or, when it has none, on the nested structs
// that have one (see Load).
func validate(ptr reflect.Value) error {
	if v, ok := ptr.Interface().(Validator); ok {
		return v.Validate()
	}
	var errs []error
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			sf := v.Type().Field(i)
			f := v.Field(i)
			if !sf.IsExported() || hasEnvKey(sf) {
				continue
			}
			if f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.Struct {
				f = f.Elem()
			}
			if f.Kind() != reflect.Struct {
				continue
			}
			if f.CanAddr() && f.Addr().Type().Implements(reflect.TypeFor[Validator]()) {
				if err := f.Addr().Interface().(Validator).Validate(); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			visit(f)
		}
	}
	visit(ptr.Elem())
	return errors.Join(errs...)
}

// leaf is one field that maps to an environment variable.
type leaf struct {
	key    string // full variable name (prefix included)
	prefix string // envPrefix of the enclosing structs
	field  reflect.StructField
	value  reflect.Value // settable field value; invalid when walking a type only
	secret bool
}

// walk calls fn for every field with an `env` tag in struct type t, descending into nested and
// embedded structs (and pointers to structs) that have no `env` tag of their own, honouring
// `envPrefix`. v is the struct value to visit, or the zero Value to walk the type alone; nil
// pointers to structs are allocated when v is settable, as Load needs somewhere to store values.
func walk(t reflect.Type, v reflect.Value, prefix string, fn func(leaf)) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		var fv reflect.Value
		if v.IsValid() {
			fv = v.Field(i)
		}
		if hasEnvKey(sf) {
			name, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
			l := leaf{
				key:    prefix + name,
				prefix: prefix,
				field:  sf,
				value:  fv,
				secret: sf.Type == reflect.TypeFor[Secret]() || sf.Tag.Get("secret") == "true",
			}
			fn(l)
			continue
		}
		ft := sf.Type
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
			if fv.IsValid() {
				if fv.IsNil() {
					if !fv.CanSet() {
						fv = reflect.Value{}
					} else {
						fv.Set(reflect.New(ft))
					}
				}
				if fv.IsValid() {
					fv = fv.Elem()
				}
			}
		}
		if ft.Kind() != reflect.Struct {
			continue
		}
		walk(ft, fv, prefix+sf.Tag.Get("envPrefix"), fn)
	}
}

func hasEnvKey(sf reflect.StructField) bool {
	name, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
	return name != ""
}
