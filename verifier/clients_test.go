/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package verifier

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The list of every hashed Secret goes over HTTP/1.1 (faster for one
// answer of a gigabyte), the watch over HTTP/2 (its pings find a dead
// connection), both asking for protobuf, to a server that offers both.
func TestClientsListOverHTTP1WatchOverHTTP2(t *testing.T) {
	type seen struct{ proto, accept string }
	got := make(chan seen, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Proto, r.Header.Get("Accept")}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	api, err := clients(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	body, err := api.list.Get().Namespace("keyward-system").Resource("secrets").Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = body.Close()
	if s := <-got; s.proto != "HTTP/1.1" || s.accept != "application/vnd.kubernetes.protobuf,application/json" {
		t.Errorf("the list went over %s asking for %q, want HTTP/1.1 asking for protobuf", s.proto, s.accept)
	}

	if _, err := api.cs.CoreV1().Secrets("keyward-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.proto != "HTTP/2.0" || s.accept != "application/vnd.kubernetes.protobuf,application/json" {
		t.Errorf("the watching clientset went over %s asking for %q, want HTTP/2.0 asking for protobuf", s.proto, s.accept)
	}
}
