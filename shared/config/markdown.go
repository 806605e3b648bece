package config

import (
	"bytes"
	"fmt"
	"strings"
)

// MarkdownTable renders vars as the README's configuration table, so the documentation is
// generated from the config structs (one source of truth) instead of written twice.
func MarkdownTable(vars []Var) string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Description |\n|---|---|---|\n")
	for _, v := range vars {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		desc := strings.ReplaceAll(v.Description, "|", `\|`)
		if v.Secret {
			desc += " (secret)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, def, desc)
	}
	return b.String()
}

// ReplaceSection returns doc with the text between the markers
// "<!-- BEGIN CONFIG name -->" and "<!-- END CONFIG name -->" replaced by body. A missing or
// misordered marker is an error naming it, so a renamed README section fails loudly.
func ReplaceSection(doc []byte, name, body string) ([]byte, error) {
	begin := []byte("<!-- BEGIN CONFIG " + name + " -->\n")
	end := []byte("<!-- END CONFIG " + name + " -->")
	i := bytes.Index(doc, begin)
	if i < 0 {
		return nil, fmt.Errorf("config section %q: marker %q not found", name, strings.TrimSpace(string(begin)))
	}
	j := bytes.Index(doc[i+len(begin):], end)
	if j < 0 {
		return nil, fmt.Errorf("config section %q: marker %q not found after its BEGIN marker", name, end)
	}
	j += i + len(begin)
	out := make([]byte, 0, len(doc)+len(body))
	out = append(out, doc[:i+len(begin)]...)
	out = append(out, body...)
	out = append(out, doc[j:]...)
	return out, nil
}
