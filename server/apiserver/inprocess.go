package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/yaml"

	"github.com/minik-dev/minik/server/auth"
)

// In-process clients: components inside the server process (the node
// service, controllers) call the API through the same handler remote
// clients reach, with authentication replaced by a fixed identity. So
// validation, authorization and versioning are one code path.

// inProcessUserKey marks a request made by InProcessTransport. Only code
// in this process can put it in a request's context.
type inProcessUserKey struct{}

// InProcessTransport returns an http.RoundTripper that serves requests in
// this process as user u, with no network and no TLS; any host in the URL
// is ignored. Responses are buffered, so it does not serve watches or
// streaming subresources. It is safe for concurrent use; a client-go
// rest.Config with Transport set to it (and ContentType JSON) works.
func (s *Server) InProcessTransport(u auth.User) http.RoundTripper {
	return inProcessTransport{s: s, user: u}
}

type inProcessTransport struct {
	s    *Server
	user auth.User
}

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	ctx := context.WithValue(req.Context(), inProcessUserKey{}, t.user)
	r := req.Clone(ctx)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &bufferedResponse{header: http.Header{}}
	t.s.ServeHTTP(w, r)
	if req.Body != nil {
		req.Body.Close()
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.code) + " " + http.StatusText(w.code),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// bufferedResponse collects a response in memory.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *bufferedResponse) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(p)
}

// inProcessUser returns the identity of a request made through
// InProcessTransport.
func inProcessUser(r *http.Request) (auth.User, bool) {
	u, ok := r.Context().Value(inProcessUserKey{}).(auth.User)
	if ok {
		u.Groups = append(u.Groups[:len(u.Groups):len(u.Groups)], auth.GroupAuthenticated)
	}
	return u, ok
}

// createName returns the metadata.name in the body of a create request, for
// authorizers that decide by name (a node may create only its own Node).
// The body is put back for the handler. "" when the body names nothing or
// cannot be read; the handler then reports the problem.
func createName(r *http.Request, info requestInfo) string {
	if r.Body == nil {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil || len(data) > maxBodyBytes {
		return ""
	}
	if isProtobuf(r) {
		obj := info.Resource.New()
		if decodeProtobuf(data, obj) != nil {
			return ""
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return ""
		}
		return m.GetName()
	}
	var head struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if json.Unmarshal(data, &head) != nil && yaml.Unmarshal(data, &head) != nil {
		return ""
	}
	return head.Metadata.Name
}
