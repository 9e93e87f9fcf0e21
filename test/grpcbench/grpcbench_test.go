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

package grpcbench

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// TestHTTPStatus reads the status Envoy would send from encoded answers:
// the floor's OK, refusals with and without an HTTP status, a bare gRPC
// status, and bytes that are not an answer.
func TestHTTPStatus(t *testing.T) {
	ok, _ := NewFloor("kt_0123abcd", "acme", "read", "iot", "").Check(context.Background(), nil)
	denied := func(code codes.Code, status typev3.StatusCode) *authv3.CheckResponse {
		r := &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{}}}
		if status != 0 {
			r.GetDeniedResponse().Status = &typev3.HttpStatus{Code: status}
		}
		return r
	}
	for _, tt := range []struct {
		name string
		resp *authv3.CheckResponse
		want int
	}{
		{"OK", ok, 200},
		{"OK with no OkHttpResponse", &authv3.CheckResponse{Status: &rpcstatus.Status{}}, 200},
		{"401", denied(codes.Unauthenticated, typev3.StatusCode_Unauthorized), 401},
		{"404", denied(codes.NotFound, typev3.StatusCode_NotFound), 404},
		{"denied without a status", denied(codes.PermissionDenied, 0), 403},
		{"a gRPC refusal alone", &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}}, 403},
	} {
		b, err := proto.Marshal(tt.resp)
		if err != nil {
			t.Fatal(err)
		}
		if got := HTTPStatus(b); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := HTTPStatus([]byte{0x12, 0x05, 0x01}); got != 0 {
		t.Errorf("truncated bytes: %d, want 0", got)
	}
}
