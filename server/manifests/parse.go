package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// ErrParse is what a file that cannot be read as manifests fails with:
// parse errors are wrapped in a *ParseError that names the file, the
// document and its first line.
var ErrParse = errors.New("manifests: not a valid manifest")

// ParseError is a document of a manifest file that is not an object minik
// can apply.
type ParseError struct {
	File     string
	Document int // 1-based index of the document in the file
	Line     int // 1-based line the document starts at
	Err      error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: document %d (line %d): %v", e.File, e.Document, e.Line, e.Err)
}

// Unwrap makes errors.Is(err, ErrParse) hold besides the cause.
func (e *ParseError) Unwrap() []error { return []error{ErrParse, e.Err} }

// object is one object of a manifest file, with where it came from.
type object struct {
	u        *unstructured.Unstructured
	document int // 1-based index of the document in the file
	line     int // first line of the document
}

// where names the object's place in its file for messages.
func (o object) where() string {
	return fmt.Sprintf("document %d (line %d) %s %s", o.document, o.line, o.u.GetKind(), objectName(o.u.GetNamespace(), o.u.GetName()))
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// document is the text of one YAML document and the line it starts at.
type document struct {
	text []byte
	line int
}

// parse reads the objects of the manifest file named file, in the order
// they appear: each YAML document (documents separated by `---` lines; a
// .json file is one document) is an object, and a `kind: List` stands
// for its items. Empty documents are skipped. The first document that is
// not an object with apiVersion, kind and metadata.name fails the whole
// file with a *ParseError.
func parse(file string, data []byte) ([]object, error) {
	var docs []document
	if strings.HasSuffix(file, ".json") {
		docs = []document{{text: data, line: 1}}
	} else {
		docs = splitDocuments(data)
	}
	var objs []object
	for i, d := range docs {
		fail := func(err error) error { return &ParseError{File: file, Document: i + 1, Line: d.line, Err: err} }
		if isBlank(d.text) {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(d.text, &m); err != nil {
			return nil, fail(err)
		}
		if m == nil {
			continue // only comments
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fail(err)
			}
			for j := range list.Items {
				if err := checkObject(&list.Items[j]); err != nil {
					return nil, fail(fmt.Errorf("items[%d]: %w", j, err))
				}
				objs = append(objs, object{u: &list.Items[j], document: i + 1, line: d.line})
			}
			continue
		}
		if err := checkObject(u); err != nil {
			return nil, fail(err)
		}
		objs = append(objs, object{u: u, document: i + 1, line: d.line})
	}
	return objs, nil
}

// checkObject checks what applying an object needs before the API sees
// it: its type and its name.
func checkObject(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "":
		return errors.New("apiVersion must be set")
	case u.GetKind() == "":
		return errors.New("kind must be set")
	case u.GetName() == "":
		return errors.New("metadata.name must be set (generateName cannot be applied)")
	}
	if _, err := schema.ParseGroupVersion(u.GetAPIVersion()); err != nil {
		return fmt.Errorf("apiVersion %q: %w", u.GetAPIVersion(), err)
	}
	return nil
}

// splitDocuments splits YAML text into its documents at lines that are
// `---` (optionally followed by a space and more, as `--- # next`).
func splitDocuments(data []byte) []document {
	var docs []document
	cur := document{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if isSeparator(line) {
			docs = append(docs, cur)
			cur = document{line: n + 1}
			continue
		}
		cur.text = append(cur.text, line...)
		cur.text = append(cur.text, '\n')
	}
	return append(docs, cur)
}

func isSeparator(line []byte) bool {
	line = bytes.TrimRight(line, " \t\r")
	return bytes.Equal(line, []byte("---")) || bytes.HasPrefix(line, []byte("--- "))
}

func isBlank(text []byte) bool { return len(bytes.TrimSpace(text)) == 0 }
