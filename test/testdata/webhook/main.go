// Command webhook is the admission webhook of the end-to-end tests: run
// in a pod, it serves HTTPS on :8443 with the certificate and key given
// in TLS_CERT and TLS_KEY (PEM). /validate refuses objects whose name
// starts with "forbidden-"; /mutate adds the label mutated-by=webhook.
package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// denyMessage is the reason /validate gives.
const denyMessage = "names starting with forbidden- are refused by the in-cluster webhook"

func main() {
	cert, err := tls.X509KeyPair([]byte(os.Getenv("TLS_CERT")), []byte(os.Getenv("TLS_KEY")))
	if err != nil {
		log.Fatalf("loading the certificate: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/validate", serve(validate))
	mux.HandleFunc("/mutate", serve(mutate))
	srv := &http.Server{Addr: ":8443", Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	fmt.Println("serving on :8443")
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

// serve decodes a review, answers it with decide and logs the request.
func serve(decide func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		resp := decide(review.Request)
		resp.UID = review.Request.UID
		fmt.Printf("%s %s %s/%s allowed=%v\n", r.URL.Path, review.Request.Operation, review.Request.Namespace, review.Request.Name, resp.Allowed)
		review.Request, review.Response = nil, resp
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&review)
	}
}

func validate(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if strings.HasPrefix(req.Name, "forbidden-") {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusForbidden, Message: denyMessage}}
	}
	return &admissionv1.AdmissionResponse{Allowed: true}
}

func mutate(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusBadRequest, Message: err.Error()}}
	}
	patch := `[{"op":"add","path":"/metadata/labels/mutated-by","value":"webhook"}]`
	if obj.Metadata.Labels == nil {
		patch = `[{"op":"add","path":"/metadata/labels","value":{"mutated-by":"webhook"}}]`
	}
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: []byte(patch), PatchType: &pt}
}
