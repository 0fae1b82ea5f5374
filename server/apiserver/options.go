package apiserver

import (
	"mime"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/internalversion"
	ivalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// optionsKinds names the options a write verb takes, as Kubernetes
// reports them in a 422 about its query parameters.
var optionsKinds = map[string]string{
	"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions",
	"delete": "DeleteOptions", "deletecollection": "DeleteOptions",
}

// checkWriteOptions refuses the query parameters of a write that
// Kubernetes refuses: a dryRun other than All (which would otherwise
// write for real), an unknown fieldValidation, a fieldManager too long, an
// apply patch without a fieldManager and force on any other patch. The
// answer is 422 Invalid on CreateOptions, UpdateOptions, PatchOptions or
// DeleteOptions, naming the parameter, as the upstream handlers answer.
// Reads pass.
func checkWriteOptions(r *http.Request, verb string) error {
	kind, ok := optionsKinds[verb]
	if !ok {
		return nil
	}
	q := r.URL.Query()
	var errs field.ErrorList
	switch kind {
	case "PatchOptions":
		opts := metav1.PatchOptions{DryRun: q["dryRun"], FieldManager: q.Get("fieldManager"), FieldValidation: q.Get("fieldValidation")}
		if q.Has("force") {
			force := q.Get("force") == "true"
			opts.Force = &force
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		errs = metavalidation.ValidatePatchOptions(&opts, types.PatchType(ct))
	case "DeleteOptions":
		errs = metavalidation.ValidateDryRun(field.NewPath("dryRun"), q["dryRun"])
	default:
		errs = metavalidation.ValidateDryRun(field.NewPath("dryRun"), q["dryRun"])
		errs = append(errs, metavalidation.ValidateFieldValidation(field.NewPath("fieldValidation"), q.Get("fieldValidation"))...)
		errs = append(errs, metavalidation.ValidateFieldManager(q.Get("fieldManager"), field.NewPath("fieldManager"))...)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(metaGK(kind), "", errs)
	}
	return nil
}

// listQuery is what a list asks for beyond its selectors.
type listQuery struct {
	limit int64 // 0 or less: everything
	rv    string
	match metav1.ResourceVersionMatch
	cont  string
}

// parseListQuery reads and checks limit, resourceVersion,
// resourceVersionMatch and continue: a limit that is not an integer is a
// 400, and the combinations Kubernetes forbids (an unknown
// resourceVersionMatch, one without resourceVersion or with continue) a
// 422 Invalid on ListOptions. As upstream, a negative limit means none.
func parseListQuery(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{
		rv: q.Get("resourceVersion"), match: metav1.ResourceVersionMatch(q.Get("resourceVersionMatch")),
		cont: q.Get("continue"),
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return lq, badRequest("invalid limit %q: must be an integer", v)
		}
		lq.limit = n
	}
	opts := internalversion.ListOptions{ResourceVersion: lq.rv, ResourceVersionMatch: lq.match, Continue: lq.cont, Limit: lq.limit}
	if errs := ivalidation.ValidateListOptions(&opts, true); len(errs) > 0 {
		return lq, apierrors.NewInvalid(metaGK("ListOptions"), "", errs)
	}
	return lq, nil
}

// methodNotAllowed answers a method a resource path does not serve (PUT
// on a collection, OPTIONS, TRACE, CONNECT) with 405, as Kubernetes does.
func methodNotAllowed(r *http.Request, res string) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: res}, r.Method)
}
