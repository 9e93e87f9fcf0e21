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
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/grpcbench"
)

// The gRPC Check against its floor (issue 16): a server that answers the
// same OkHttpResponse and does nothing else (test/grpcbench). Both are
// served by grpc.NewServer() with its defaults, as the verifier's is, and
// called by the same client, which sends one encoded request and reads
// the answers without decoding them: what differs is the servers' work.

// allowedCheck is an allowed check as Envoy fills it for a request to a
// route naming iot/devices: the HTTP attributes, the header map with
// pseudo-headers, the source and destination.
func allowedCheck(key string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *authv3.AttributeContext_Peer {
		return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
		}}}
	}
	const path = "/integration/device/sendmsg?x=1"
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      addr("203.0.113.9", 40000),
		Destination: addr("10.0.0.7", 8080),
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "13283746523245232", Method: "POST", Path: path, Host: "api.example.com", Scheme: "https", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				":authority": "api.example.com", ":method": "POST", ":path": path, ":scheme": "https",
				"authorization": "Bearer " + key, "user-agent": "curl/8.5.0", "accept": "*/*",
				"x-forwarded-proto": "https", "x-request-id": "0123456789abcdef0123456789abcdef",
			},
		}},
		ContextExtensions: map[string]string{ExtensionNamespace: "iot", ExtensionKeyGroup: "devices"},
	}}
}

// checkServers are the verifier's Check and the floor answering with the
// same headers.
func checkServers(t testing.TB, f *fixture) (verifier, floor authv3.AuthorizationServer, req *authv3.CheckRequest) {
	t.Helper()
	a := &authorization{h: f.handler}
	req = allowedCheck(f.keys["downlinker"])
	resp, err := a.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	h := responseHeaders(resp.GetOkResponse().GetHeaders())
	if len(h) != len(grpcbench.HeaderNames) {
		t.Fatalf("the verifier answers %v, want an OK with %d headers", resp, len(grpcbench.HeaderNames))
	}
	return a, grpcbench.NewFloor(h["x-auth-key"], h["x-auth-application"], h["x-auth-scopes"], h["x-auth-namespace"], h["x-auth-external-id"]), req
}

// dialCheck serves srv on a loopback socket, h2c, and returns a connection
// to it: the verifier's Check as the verifier serves it (newGRPCServer),
// the floor with grpc.NewServer()'s defaults.
func dialCheck(t testing.TB, f *fixture, srv authv3.AuthorizationServer) *grpc.ClientConn {
	t.Helper()
	var addr string
	if _, ok := srv.(*authorization); ok {
		g, err := newGRPCServer("127.0.0.1:0", &Server{Store: f.store, Handler: f.handler}, nil)
		if err != nil {
			t.Fatal(err)
		}
		go g.serve(context.Background())
		t.Cleanup(g.srv.Stop)
		addr = g.addr()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		authv3.RegisterAuthorizationServer(s, srv)
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(s.Stop)
		addr = ln.Addr().String()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// roundTrip returns one allowed Check over conn, checked to be an OK.
func roundTrip(t testing.TB, conn *grpc.ClientConn, req *grpcbench.Raw) func() {
	resp := &grpcbench.Raw{}
	return func() {
		if err := grpcbench.Call(context.Background(), conn, req, resp); err != nil {
			t.Fatal(err)
		}
		if s := grpcbench.HTTPStatus(resp.B); s != 200 {
			t.Fatalf("answer %d, want 200", s)
		}
	}
}

func encode(t testing.TB, m proto.Message) *grpcbench.Raw {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &grpcbench.Raw{B: b}
}

// TestGRPCCheckAllocs: an allowed Check allocates no more than the floor,
// in the handler and over a real socket (every allocation of the process:
// the client's, which are the same for both, and the server's, which are
// gRPC's decoding and encoding and the handler's). The floor's answer is
// the verifier's OkHttpResponse; the verifier adds the dynamic metadata.
func TestGRPCCheckAllocs(t *testing.T) {
	f := newFixture(t)
	ver, floor, req := checkServers(t, f)
	ctx := context.Background()

	vr, _ := ver.Check(ctx, req)
	fr, _ := floor.Check(ctx, req)
	if !proto.Equal(vr.GetOkResponse(), fr.GetOkResponse()) {
		t.Fatalf("the floor answers %v, the verifier %v: not the same OkHttpResponse", fr.GetOkResponse(), vr.GetOkResponse())
	}
	handler := func(s authv3.AuthorizationServer) float64 {
		return testing.AllocsPerRun(1000, func() { _, _ = s.Check(ctx, req) })
	}
	vh, fh := handler(ver), handler(floor)
	t.Logf("Check alone: verifier %.0f allocations, floor %.0f", vh, fh)
	if vh > fh {
		t.Errorf("the verifier's Check allocates %.0f times, the floor's %.0f", vh, fh)
	}

	raw := encode(t, req)
	overSocket := func(s authv3.AuthorizationServer) float64 {
		call := roundTrip(t, dialCheck(t, f, s), raw)
		call() // connect
		return testing.AllocsPerRun(2000, call)
	}
	// Alternated, best of three: a round trip's count varies by one or
	// two with the transport's occasional work (window updates, pings).
	vs, fs := overSocket(ver), overSocket(floor)
	for range 2 {
		vs, fs = min(vs, overSocket(ver)), min(fs, overSocket(floor))
	}
	t.Logf("one Check over a socket, client and server: verifier %.0f allocations, floor %.0f", vs, fs)
	if vs > fs {
		t.Errorf("an allowed Check over a socket allocates %.0f times with the verifier, %.0f with the floor", vs, fs)
	}
}

// BenchmarkGRPCCheck is one allowed Check over a loopback socket, 100,000
// keys held, against the floor: the same client, one call at a time.
func BenchmarkGRPCCheck(b *testing.B) {
	f := newFixture(b)
	for i := range 100_000 {
		f.addKey(b, fmt.Sprintf("filler-%d", i), "iot", "devices", record.StateActive, []string{"status"}, nil, time.Time{})
	}
	ver, floor, req := checkServers(b, f)
	raw := encode(b, req)
	for _, s := range []struct {
		name string
		srv  authv3.AuthorizationServer
	}{{"floor", floor}, {"verifier", ver}} {
		b.Run(s.name, func(b *testing.B) {
			call := roundTrip(b, dialCheck(b, f, s.srv), raw)
			call()
			b.ReportAllocs()
			for b.Loop() {
				call()
			}
		})
	}
}

// BenchmarkGRPCCheckHandler is the Check handler alone, 100,000 keys held,
// against the floor's: what the verifier adds to gRPC's own work.
func BenchmarkGRPCCheckHandler(b *testing.B) {
	f := newFixture(b)
	for i := range 100_000 {
		f.addKey(b, fmt.Sprintf("filler-%d", i), "iot", "devices", record.StateActive, []string{"status"}, nil, time.Time{})
	}
	ver, floor, req := checkServers(b, f)
	ctx := context.Background()
	for _, s := range []struct {
		name string
		srv  authv3.AuthorizationServer
	}{{"floor", floor}, {"verifier", ver}} {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.srv.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGRPCMetadataEncoding: the dynamic metadata, encoded field by field,
// decodes to the Struct that structpb would have built from the same facts,
// whatever their lengths (a length's varint grows at 128 bytes, the
// answer's buffer at 512).
func TestGRPCMetadataEncoding(t *testing.T) {
	long := strings.Repeat("ü", 100) // 200 bytes
	for _, facts := range [][len(metadataFacts)]string{
		{"kt_0123abcd", "acme", "read write", "iot", "70B3D57ED0001234", "devices"},
		{"kt_0123abcd", "acme", "", "iot", "", "devices"},
		{"kt_0123abcd", long, long, "iot", long, strings.Repeat("g", 63)},
	} {
		b := appendMetadata(nil, &facts)
		var got authv3.CheckResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", facts, err)
		}
		inner := map[string]any{}
		for i, name := range metadataFacts {
			inner[name] = facts[i]
		}
		want, err := structpb.NewStruct(map[string]any{MetadataNamespace: inner})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got.GetDynamicMetadata(), want) {
			t.Errorf("decoded %v, want %v", got.GetDynamicMetadata(), want)
		}
	}
}
