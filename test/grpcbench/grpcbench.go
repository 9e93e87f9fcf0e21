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

// Package grpcbench holds what the verifier's gRPC benchmarks share (the
// Go benchmark in verifier/grpc_bench_test.go and `make bench`'s row in
// test/bench/grpc.go): the gRPC floor, a server that answers every Envoy
// ext_authz Check with the verifier's OK and does nothing else, and a
// client that sends a request encoded once and reads the answer without
// decoding it, so that it costs the same whichever server answers.
package grpcbench

import (
	"context"
	"errors"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// CheckMethod is the full name of Envoy's ext_authz Check.
const CheckMethod = "/envoy.service.auth.v3.Authorization/Check"

// HeaderNames are the headers of the verifier's OK, in its order, as
// Envoy's header map names them.
var HeaderNames = [...]string{"x-auth-key", "x-auth-application", "x-auth-scopes", "x-auth-namespace", "x-auth-external-id"}

// Floor answers every Check OK with the verifier's headers (values in
// `value`, not `raw_value`) and does nothing else: it reads nothing of the
// request and sets no dynamic metadata. Each answer is built afresh, as any
// server must build an answer whose values depend on the request.
type Floor struct {
	authv3.UnimplementedAuthorizationServer
	values [len(HeaderNames)]string
}

// NewFloor returns a floor answering with these header values, in the
// order of HeaderNames.
func NewFloor(keyID, application, scopes, namespace, externalID string) *Floor {
	return &Floor{values: [...]string{keyID, application, scopes, namespace, externalID}}
}

// Check answers OK.
func (f *Floor) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	headers := make([]*corev3.HeaderValueOption, len(HeaderNames))
	for i, name := range HeaderNames {
		headers[i] = &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: f.values[i]}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: headers}},
	}, nil
}

// Raw is a message as it travels: a request encoded once, or an answer
// read into a buffer that the next call reuses.
type Raw struct{ B []byte }

// Codec passes Raw messages through gRPC untouched; it names itself
// "proto", so servers decode and encode as they would for any client.
type Codec struct{}

// Name is the content subtype: proto.
func (Codec) Name() string { return "proto" }

// Marshal returns the request's bytes.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*Raw)
	if !ok {
		return nil, errors.New("grpcbench: not a *Raw")
	}
	return mem.BufferSlice{mem.SliceBuffer(r.B)}, nil
}

// Unmarshal copies the answer into the Raw's buffer.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*Raw)
	if !ok {
		return errors.New("grpcbench: not a *Raw")
	}
	r.B = r.B[:0]
	for _, b := range data {
		r.B = append(r.B, b.ReadOnlyData()...)
	}
	return nil
}

// forceCodec is the call option every Check of Call carries.
var forceCodec = []grpc.CallOption{grpc.ForceCodecV2(Codec{})}

// Call sends one Check, encoded in req, and reads the answer into resp.
func Call(ctx context.Context, conn *grpc.ClientConn, req, resp *Raw) error {
	return conn.Invoke(ctx, CheckMethod, req, resp, forceCodec...)
}

// CheckResponse's fields, as numbered in envoy/service/auth/v3/external_auth.proto.
const (
	fieldStatus = 1 // google.rpc.Status
	fieldDenied = 2 // DeniedHttpResponse; an OK answer has ok_response (3)
)

// HTTPStatus reads, without decoding the whole answer, the HTTP status an
// encoded CheckResponse makes Envoy send: 200 for an OK (gRPC status OK
// and an OkHttpResponse or none), the denied response's status (403 when
// it names none), or 0 when the answer does not parse.
func HTTPStatus(b []byte) int {
	code, denied, status := int64(0), false, 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return 0
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		switch num {
		case fieldStatus:
			code = varintField(v, 1)
		case fieldDenied:
			denied = true
			// DeniedHttpResponse.status (1) is an HttpStatus whose code is 1.
			if s, ok := bytesField(v, 1); ok {
				status = int(varintField(s, 1))
			}
		}
	}
	switch {
	case denied && status == 0:
		return 403
	case denied:
		return status
	case code != 0:
		return 403
	}
	return 200
}

// varintField returns the last value of varint field num in b, or 0.
func varintField(b []byte, num protowire.Number) int64 {
	var out int64
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return out
		}
		b = b[l:]
		if n == num && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return out
			}
			out, b = int64(v), b[l:] // #nosec G115 -- a status code
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return out
		}
		b = b[l:]
	}
	return out
}

// bytesField returns the last value of length-delimited field num in b.
func bytesField(b []byte, num protowire.Number) (out []byte, found bool) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return out, found
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return out, found
			}
			out, found, b = v, true, b[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return out, found
		}
		b = b[l:]
	}
	return out, found
}
