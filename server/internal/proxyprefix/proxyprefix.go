// Package proxyprefix carries, in a request's context, the path prefix
// under which a client reached a proxied backend (".../services/NAME/proxy"
// when a service proxy is served by proxying to one of its pods), so that
// links in the backend's pages are rewritten to go through it.
package proxyprefix

import "context"

type key struct{}

// With returns ctx carrying prefix.
func With(ctx context.Context, prefix string) context.Context {
	return context.WithValue(ctx, key{}, prefix)
}

// From returns the prefix ctx carries, "" if none.
func From(ctx context.Context) string {
	p, _ := ctx.Value(key{}).(string)
	return p
}
