package model

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FormatName is the "format" of every bundle file; anything else is not ours.
const FormatName = "podtype-model"

// FormatVersion is the bundle format this package writes and the only one
// Decode reads (2: type models over features.AnomalyVector, with the bundle's
// anomaly_feature_names; format 1 forests scored classification vectors and
// cannot be migrated, only retrained). Any change to the payload's fields bumps it:
// Decode rejects unknown fields, so an old reader fails loudly on a new file
// instead of silently dropping what it does not know.
const FormatVersion = 2

// MaxDecodedSize bounds the decompressed size Decode accepts, so a corrupt or
// hostile file cannot exhaust memory. Real bundles are a few MiB.
const MaxDecodedSize = 256 << 20

// versionTimeLayout is compact, sortable and safe in file names, label
// values and annotations.
const versionTimeLayout = "20060102T150405Z"

// envelope is the document in a bundle file. The payload is kept as raw
// bytes so that the checksum is over exactly what is stored.
type envelope struct {
	Format        string          `json:"format"`
	FormatVersion int             `json:"format_version"`
	Version       string          `json:"version"`
	SHA256        string          `json:"sha256"`
	Payload       json.RawMessage `json:"payload"`
}

// Encode validates b and writes it as a gzip-compressed bundle document.
// It stamps b with the format version, the Version derived from the payload
// and the checksum behind ETag, so the caller can log or serve what it wrote.
// Encoding the same bundle twice gives the same bytes.
func Encode(w io.Writer, b *Bundle) error {
	data, version, sum, err := marshal(b)
	if err != nil {
		return fmt.Errorf("model: encode: %w", err)
	}
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("model: encode: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("model: encode: %w", err)
	}
	b.FormatVersion, b.Version, b.checksum = FormatVersion, version, sum
	return nil
}

// marshal returns the uncompressed envelope, the bundle version and the
// payload checksum.
func marshal(b *Bundle) (data []byte, version, sum string, err error) {
	if b == nil {
		return nil, "", "", fmt.Errorf("bundle is nil")
	}
	if b.FormatVersion != 0 && b.FormatVersion != FormatVersion {
		return nil, "", "", fmt.Errorf("bundle has format_version %d, this program writes %d", b.FormatVersion, FormatVersion)
	}
	cp := *b
	cp.FormatVersion = FormatVersion
	if err := cp.Validate(); err != nil {
		return nil, "", "", err
	}
	payload, err := json.Marshal(&cp)
	if err != nil {
		return nil, "", "", fmt.Errorf("payload: %w", err)
	}
	h := sha256.Sum256(payload)
	sum = hex.EncodeToString(h[:])
	version = makeVersion(&cp, sum)
	data, err = json.Marshal(envelope{
		Format:        FormatName,
		FormatVersion: FormatVersion,
		Version:       version,
		SHA256:        sum,
		Payload:       payload,
	})
	if err != nil {
		return nil, "", "", fmt.Errorf("envelope: %w", err)
	}
	return data, version, sum, nil
}

func makeVersion(b *Bundle, sum string) string {
	return b.CreatedAt.UTC().Format(versionTimeLayout) + "-" + sum[:12]
}

// Decode reads a bundle written by Encode. It refuses, with an error saying
// which: data that is not gzip or is truncated, a document of another format,
// a newer format version, a payload whose SHA-256 differs from the recorded
// one (damage), unknown fields, a version that does not match the content,
// and any bundle that fails Validate.
func Decode(r io.Reader) (*Bundle, error) {
	b, err := decode(r)
	if err != nil {
		return nil, fmt.Errorf("model: decode: %w", err)
	}
	return b, nil
}

func decode(r io.Reader) (*Bundle, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a gzip stream: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, MaxDecodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(data) > MaxDecodedSize {
		return nil, fmt.Errorf("document is larger than %d bytes", MaxDecodedSize)
	}
	return decodeDocument(data)
}

// decodeDocument checks and decodes an uncompressed envelope.
func decodeDocument(data []byte) (*Bundle, error) {
	// Read only the header first: a newer format may change everything
	// else, and its error should say "newer", not "unknown field".
	var head struct {
		Format        string `json:"format"`
		FormatVersion int    `json:"format_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a JSON document: %w", err)
	}
	if head.Format != FormatName {
		return nil, fmt.Errorf("format = %q, want %q: not a model bundle", head.Format, FormatName)
	}
	if head.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("format_version = %d is newer than this program reads (%d): upgrade it", head.FormatVersion, FormatVersion)
	}
	if head.FormatVersion < FormatVersion {
		// Format 1 had forests over the classification vector; nothing in it can be
		// scored by this program's anomaly models, so it must be retrained, not migrated.
		return nil, fmt.Errorf("format_version = %d is older than this program reads (%d): retrain the bundle", head.FormatVersion, FormatVersion)
	}
	var env envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	h := sha256.Sum256(env.Payload)
	sum := hex.EncodeToString(h[:])
	if !strings.EqualFold(env.SHA256, sum) {
		return nil, fmt.Errorf("checksum mismatch: payload has sha256 %s, envelope records %q: the file is damaged", sum, env.SHA256)
	}
	b, err := decodePayload(env.Payload)
	if err != nil {
		return nil, err
	}
	if b.FormatVersion != env.FormatVersion {
		return nil, fmt.Errorf("payload format_version = %d, envelope says %d", b.FormatVersion, env.FormatVersion)
	}
	if want := makeVersion(b, sum); env.Version != want {
		return nil, fmt.Errorf("version = %q does not match the content, want %q", env.Version, want)
	}
	b.Version, b.checksum = env.Version, sum
	return b, nil
}

// decodePayload decodes and validates the bundle itself.
func decodePayload(payload []byte) (*Bundle, error) {
	var b Bundle
	if err := strictUnmarshal(payload, &b); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// strictUnmarshal decodes exactly one JSON value and refuses unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// ETag returns a strong HTTP entity tag for the bundle's encoded form, from
// its payload checksum, or "" for a bundle that was neither encoded nor
// decoded (nothing to tag yet).
func (b *Bundle) ETag() string {
	if b == nil || b.checksum == "" {
		return ""
	}
	return `"` + b.checksum + `"`
}

// WriteFile encodes b to path atomically: it writes a temporary file in the
// same directory, syncs it and renames it over path, so a reader sees either
// the old or the new bundle, never a partial one, even after a crash. The
// file it replaces is kept as path+".prev" (hard-linked, so path never
// disappears), as a fallback for an operator after a bad training run.
// Like Encode, it stamps b on success.
func WriteFile(path string, b *Bundle) error {
	data, version, sum, err := marshal(b)
	if err != nil {
		return fmt.Errorf("model: write %s: %w", path, err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("model: write %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("model: write %s: %w", path, err)
	}
	if err := atomicWrite(path, gz.Bytes(), true); err != nil {
		return fmt.Errorf("model: write %s: %w", path, err)
	}
	b.FormatVersion, b.Version, b.checksum = FormatVersion, version, sum
	return nil
}

// atomicWrite replaces path with data via a synced temporary file and a
// rename, first keeping the old file as path+".prev" if keepPrev.
func atomicWrite(path string, data []byte, keepPrev bool) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if keepPrev {
		if err := keepPrevious(path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("keep previous bundle: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	// Make the rename itself durable.
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new synced file next to path and returns its name.
func writeTemp(path string, data []byte) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	// CreateTemp makes the file 0600; the bundle is no secret and may be
	// read by another user (a file server, a sidecar).
	if err := f.Chmod(0o644); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// keepPrevious makes path+".prev" a copy of path, if path exists.
func keepPrevious(path string) error {
	prev := path + ".prev"
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if err := os.Remove(prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Link(path, prev); err == nil {
		return nil
	}
	// Some file systems have no hard links; copy instead, atomically so a
	// crash leaves no half-written .prev.
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return atomicWrite(prev, data, false)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadFile decodes the bundle at path.
func ReadFile(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	defer f.Close()
	b, err := decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("model: read %s: %w", path, err)
	}
	return b, nil
}
