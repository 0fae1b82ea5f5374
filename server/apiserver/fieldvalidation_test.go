package apiserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestFieldValidation sends bodies with an unknown and a duplicate field
// in every write of a built-in kind, in JSON and YAML, under each
// fieldValidation: Strict refuses them with a 400 naming the fields, Warn
// (also the default) writes and names them in Warning headers, Ignore
// writes silently.
func TestFieldValidation(t *testing.T) {
	ts := newTestServer(t)
	const cms = "/api/v1/namespaces/default/configmaps"
	if code, st := rawRequest(t, ts, "POST", cms, "application/json", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"live"}}`)); code != http.StatusCreated {
		t.Fatalf("create live = %d %s", code, st.Message)
	}
	jsonBody := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"data":{"a":"1"},"data":{"a":"2"},"colour":"red"}`
	yamlBody := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata: {a: '1'}\ndata: {a: '2'}\ncolour: red\n"
	cases := []struct {
		name, method, path, ct, body string
		created                      bool     // answered 201 when accepted
		strictCode                   int      // the answer under Strict
		strictNames                  []string // what it names
		unknown                      string   // the unknown field, when detected
	}{
		{"create JSON", "POST", cms, "application/json", jsonBody, true, 400, []string{"data", "colour"}, "colour"},
		// Strict stops at the YAML's duplicate key.
		{"create YAML", "POST", cms, "application/yaml", yamlBody, true, 400, []string{"data"}, "colour"},
		{"update JSON", "PUT", cms + "/live", "application/json", strings.Replace(jsonBody, "%s", "live", 1), false, 400, []string{"data", "colour"}, "colour"},
		// Strict refuses a patch as upstream: 422 on the field patch.
		{"merge patch", "PATCH", cms + "/live", string(types.MergePatchType), `{"data":{"a":"1"},"data":{"a":"2"},"colour":"red"}`, false, 422, []string{"data", "colour"}, "colour"},
		{"strategic merge patch", "PATCH", cms + "/live", string(types.StrategicMergePatchType), `{"data":{"a":"1"},"data":{"a":"2"},"colour":"red"}`, false, 422, []string{"data", "colour"}, "colour"},
		// An apply names an unknown field in any mode (below); only
		// duplicates depend on fieldValidation.
		{"apply", "PATCH", cms, string(types.ApplyYAMLPatchType), strings.Replace(yamlBody, "colour: red\n", "", 1), true, 400, []string{"data"}, ""},
	}
	n := 0
	for _, tc := range cases {
		for _, mode := range []string{"Strict", "Warn", "", "Ignore"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				n++
				name := "cm" + strings.Repeat("x", n)
				path, body := tc.path, strings.Replace(tc.body, "%s", name, 1)
				if tc.method == "PATCH" && tc.created {
					path += "/" + name
				}
				q := "?fieldManager=test"
				if mode != "" {
					q += "&fieldValidation=" + mode
				}
				code, msg, warnings := validationRequest(t, ts, tc.method, path+q, tc.ct, body)
				named := []string{"data"}
				if tc.unknown != "" {
					named = append(named, tc.unknown)
				}
				switch mode {
				case "Strict":
					if code != tc.strictCode || !containsAll(msg, tc.strictNames) {
						t.Errorf("%s = %d %q, want %d naming %v", tc.method, code, msg, tc.strictCode, tc.strictNames)
					}
				case "Ignore":
					if code >= 300 || len(warnings) > 0 {
						t.Errorf("%s = %d %q, warnings %q; want success without warnings", tc.method, code, msg, warnings)
					}
				default:
					if code >= 300 || !containsAll(strings.Join(warnings, "\n"), named) {
						t.Errorf("%s = %d %q, warnings %q; want success with warnings naming %v", tc.method, code, msg, warnings, named)
					}
				}
			})
		}
	}
	code, msg, _ := validationRequest(t, ts, "PATCH", cms+"/applied?fieldManager=test&fieldValidation=Ignore",
		string(types.ApplyYAMLPatchType), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: applied}\ncolour: red\n")
	if code != http.StatusBadRequest || !strings.Contains(msg, "colour") {
		t.Errorf("apply with an unknown field = %d %q, want 400 naming colour", code, msg)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// validationRequest sends body and returns the status code, the message
// of a failure and the Warning headers.
func validationRequest(t *testing.T, ts *testServer, method, path, ct, body string) (int, string, []string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.url+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	json.Unmarshal(data, &st)
	return resp.StatusCode, st.Message, resp.Header.Values("Warning")
}
