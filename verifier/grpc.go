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
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// Envoy's gRPC ext_authz (envoy.service.auth.v3.Authorization/Check): the
// same decision as the HTTP dialects, from the same store. The group is
// named per route by the check request's context extensions, which only
// the gateway's configuration sets, never a client.
const (
	ExtensionNamespace = "keyward.dev/namespace"
	ExtensionKeyGroup  = "keyward.dev/keygroup"
	// MetadataNamespace holds the facts of an allowed check in the
	// response's dynamic metadata, for Envoy's rate-limit filter and
	// access logs.
	MetadataNamespace = "keyward.dev"
)

// authHeaders are the headers an allowed check sets on the request sent
// upstream, as Envoy's header map names them.
var authHeaders = [...]string{"x-auth-key", "x-auth-application", "x-auth-scopes", "x-auth-namespace", "x-auth-external-id"}

// overrideHeadersLower are overrideHeaders as Envoy's header map names them.
var overrideHeadersLower = func() (out [len(overrideHeaders)]string) {
	for i, h := range overrideHeaders {
		out[i] = strings.ToLower(h)
	}
	return out
}()

// authorization serves Check from a Handler.
type authorization struct {
	authv3.UnimplementedAuthorizationServer
	h *Handler
}

// Check decides one request as Envoy describes it: method and path (with
// its query) from the HTTP attributes, the credential and method-override
// headers from its header map, the client from the source address.
func (a *authorization) Check(_ context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := a.h
	if !h.store.Synced() {
		// As the HTTP dialects' 503: Envoy counts it a failure of the
		// service (status_on_error), where a denial would tell the client
		// its valid key is unknown.
		return nil, errStarting
	}
	now := h.now()
	attrs := in.GetAttributes()
	ext := attrs.GetContextExtensions()
	ns, kg := ext[ExtensionNamespace], ext[ExtensionKeyGroup]
	req := Request{Namespace: ns, KeyGroup: kg}
	if !dnsLabel(ns) || !dnsLabel(kg) {
		return noGroup, nil
	}
	hr := attrs.GetRequest().GetHttp()
	hdr := hr.GetHeaders()
	if hm := hr.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		hdr = mergeHeaderMap(hdr, hm)
	}
	req.Method, req.URI = hr.GetMethod(), hr.GetPath()
	// The header lines live on this stack: nothing of req outlives the
	// call (ns and kg, which the answer keeps, are copied out of it).
	var auth, apiKey [1]string
	var overrides [len(overrideHeadersLower)]string
	if v, ok := hdr["authorization"]; ok {
		auth[0] = v
		req.Authorization = auth[:]
	}
	if v, ok := hdr["x-api-key"]; ok {
		apiKey[0] = v
		req.XAPIKey = apiKey[:]
	}
	for i, name := range overrideHeadersLower {
		if v, ok := hdr[name]; ok {
			overrides[i] = v
			req.stated.overrides[i] = overrides[i : i+1 : i+1]
		}
	}
	// The source is the connection Envoy accepted (the TCP peer, or what
	// PROXY protocol carried), not a client Envoy derived from
	// X-Forwarded-For; no header the client sent is read for it.
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		req.Client, _ = netip.ParseAddr(sa.GetAddress())
	}
	d := h.verify(&req, now)
	resp := checkResponse(ns, kg, d, hdr)
	h.store.metrics.observe(d.group, d.Reason, time.Since(now))
	return resp, nil
}

// errStarting answers every check until the store has synced.
var errStarting = status.Error(codes.Unavailable, "the verifier is starting: its caches have not synced")

// mergeHeaderMap is the request's headers as one map, however Envoy sent
// them: with encode_raw_headers it fills header_map, one entry per line,
// and not headers. Lines of one name are joined by commas, as Envoy joins
// them in headers, so two credentials or two different overrides are
// refused as they are there. A check that carries both (Envoy never sends
// one) is read as one request whose lines are all of them; an entry whose
// value and raw_value differ gives both lines.
func mergeHeaderMap(headers map[string]string, entries []*corev3.HeaderValue) map[string]string {
	out := make(map[string]string, len(headers)+len(entries))
	maps.Copy(out, headers)
	add := func(k, v string) {
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	for _, e := range entries {
		raw := string(e.GetRawValue())
		switch v := e.GetValue(); {
		case raw == "":
			add(e.GetKey(), v)
		case v == "" || v == raw:
			add(e.GetKey(), raw)
		default:
			add(e.GetKey(), v)
			add(e.GetKey(), raw)
		}
	}
	return out
}

// noGroup answers a check whose route names no valid group: 404, as the
// HTTP dialects answer an unknown URL.
var noGroup = &authv3.CheckResponse{
	Status: &rpcstatus.Status{Code: int32(codes.NotFound), Message: "the route names no KeyGroup: set the context extensions " + ExtensionNamespace + " and " + ExtensionKeyGroup},
	HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_NotFound},
	}},
}

func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}
}

// checkResponse is the answer to a check: OK with the X-Auth-* headers and
// the facts as dynamic metadata, every client-sent x-auth-* header not set
// here removed; or the refusal of the HTTP dialects.
func checkResponse(namespace, keyGroup string, d Decision, hdr map[string]string) *authv3.CheckResponse {
	if d.Reason != ReasonOK {
		a := answers[d.Reason]
		code := codes.PermissionDenied
		headers := []*corev3.HeaderValueOption{
			header("x-auth-reason", a.header[0]), header("content-type", jsonType[0]), header("cache-control", noStore[0]),
		}
		if a.status == 401 {
			code = codes.Unauthenticated
			realm := `Bearer realm="` + namespace + "/" + keyGroup + `"`
			if d.group != nil {
				realm = d.group.realm[0]
			}
			headers = append(headers, header("www-authenticate", realm))
		}
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(code)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode(a.status)}, // #nosec G115 -- an HTTP status
				Headers: headers,
				Body:    string(a.body),
			}},
		}
	}
	return allowed(d.entry, keyGroup, hdr)
}

// metadataFacts are the fields of the dynamic metadata under
// MetadataNamespace: the key's X-Auth-* values, in the order of
// authHeaders, then the key group.
var metadataFacts = [...]string{"key_id", "application", "scopes", "namespace", "external_id", "key_group"}

// allowedAnswer is an allowed check's answer, every part of it in one
// allocation (where a server building the same OK field by field makes
// fifteen): the OK with the X-Auth-* headers, the headers to remove, and
// the dynamic metadata, encoded. gRPC encodes the answer once Check
// returns; nothing keeps it.
type allowedAnswer struct {
	resp    authv3.CheckResponse
	status  rpcstatus.Status
	oneof   authv3.CheckResponse_OkResponse
	ok      authv3.OkHttpResponse
	headers [len(authHeaders)]*corev3.HeaderValueOption
	options [len(authHeaders)]corev3.HeaderValueOption
	values  [len(authHeaders)]corev3.HeaderValue
	// remove backs HeadersToRemove: the X-Auth-* headers without a value,
	// and a few forged ones before append must grow it.
	remove [len(authHeaders) + 3]string
	// meta backs the encoded metadata (about 170 bytes for short names);
	// longer values grow it, in an allocation of its own. At this size the
	// whole answer takes 1.5 KiB (go-control-plane v1.40).
	meta [232]byte
}

// allowed is the OK for key e in keyGroup: its X-Auth-* headers, every
// client-sent x-auth-* header not set here removed, and its facts as
// dynamic metadata. The metadata is set encoded, as the answer's unknown
// fields, which protobuf writes out as they are: on the wire it is
// dynamic_metadata like any other, but in this process the answer's
// GetDynamicMetadata is nil (decode the answer to read it).
func allowed(e *entry, keyGroup string, hdr map[string]string) *authv3.CheckResponse {
	p := e.profile
	values := [len(authHeaders)]string{e.keyID[0], p.headerApp[0], p.headerScope[0], p.headerNS[0], first([][]string{p.headerExtID})}
	a := new(allowedAnswer)
	a.status.Code = int32(codes.OK)
	a.oneof.OkResponse = &a.ok
	a.resp.Status, a.resp.HttpResponse = &a.status, &a.oneof
	a.ok.Headers, a.ok.HeadersToRemove = a.headers[:0], a.remove[:0]
	for i, name := range authHeaders {
		if values[i] == "" {
			a.ok.HeadersToRemove = append(a.ok.HeadersToRemove, name)
			continue
		}
		a.values[i].Key, a.values[i].Value = name, values[i]
		a.options[i].Header = &a.values[i]
		// Replace, never append: a client's forged X-Auth-Key must not
		// reach the upstream beside keyward's. Left unset, the action is
		// the deprecated append field's default, which Envoy v1.37.0 read
		// as "append" (envoyproxy/envoy#43310).
		a.options[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		a.ok.Headers = append(a.ok.Headers, &a.options[i])
	}
	for name := range hdr {
		if strings.HasPrefix(name, "x-auth-") && !slices.Contains(authHeaders[:], name) {
			a.ok.HeadersToRemove = append(a.ok.HeadersToRemove, name)
		}
	}
	facts := [len(metadataFacts)]string{values[0], values[1], values[2], values[3], values[4], keyGroup}
	a.resp.ProtoReflect().SetUnknown(appendMetadata(a.meta[:0], &facts))
	return &a.resp
}

// The field numbers appendMetadata writes: CheckResponse.dynamic_metadata
// (envoy/service/auth/v3/external_auth.proto), Struct.fields,
// Value.string_value and Value.struct_value
// (google/protobuf/struct.proto), and a map entry's key and value.
// TestGRPCMetadataEncoding decodes what they make.
const (
	fieldDynamicMetadata protowire.Number = 4
	fieldStructFields    protowire.Number = 1
	fieldValueString     protowire.Number = 3
	fieldValueStruct     protowire.Number = 5
	mapEntryKey          protowire.Number = 1
	mapEntryValue        protowire.Number = 2
)

// appendMetadata appends CheckResponse.dynamic_metadata, the Struct
// {"keyward.dev": {fact: string, …}}, encoded: the bytes protobuf-go
// writes for a structpb.Struct holding the same, but without building one.
// Built with structpb.NewStruct, which boxes every value, and encoded by
// protobuf-go, which walks a map by reflection (an allocation per entry for
// its size and again for its bytes), the metadata cost 41 allocations per
// allowed check (27 to build, 14 to encode): nearly three times the
// fifteen of a whole OK built field by field.
func appendMetadata(b []byte, facts *[len(metadataFacts)]string) []byte {
	inner := 0
	for i, name := range metadataFacts {
		inner += entrySize(name, stringValueSize(facts[i]))
	}
	value := protowire.SizeTag(fieldValueStruct) + protowire.SizeBytes(inner)
	b = protowire.AppendTag(b, fieldDynamicMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entrySize(MetadataNamespace, value))) // #nosec G115 -- a length
	b = appendEntryHead(b, MetadataNamespace, value)
	b = protowire.AppendTag(b, fieldValueStruct, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner)) // #nosec G115 -- a length
	for i, name := range metadataFacts {
		b = appendEntryHead(b, name, stringValueSize(facts[i]))
		b = protowire.AppendTag(b, fieldValueString, protowire.BytesType)
		b = protowire.AppendString(b, facts[i])
	}
	return b
}

// stringValueSize is the encoded size of a Value holding s.
func stringValueSize(s string) int {
	return protowire.SizeTag(fieldValueString) + protowire.SizeBytes(len(s))
}

// entryBodySize is the encoded size of a Struct's fields entry, key and a
// Value of value bytes.
func entryBodySize(key string, value int) int {
	return protowire.SizeTag(mapEntryKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(mapEntryValue) + protowire.SizeBytes(value)
}

// entrySize is entryBodySize with the entry's tag and length.
func entrySize(key string, value int) int {
	return protowire.SizeTag(fieldStructFields) + protowire.SizeBytes(entryBodySize(key, value))
}

// appendEntryHead appends a Struct's fields entry up to its Value's
// contents, which are value bytes long.
func appendEntryHead(b []byte, key string, value int) []byte {
	b = protowire.AppendTag(b, fieldStructFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entryBodySize(key, value))) // #nosec G115 -- a length
	b = protowire.AppendTag(b, mapEntryKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, mapEntryValue, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(value)) // #nosec G115 -- a length
}

// grpcIdleTimeout is how long a gRPC connection may carry no call.
var grpcIdleTimeout = 2 * time.Minute

// grpcServer serves Check, health and reflection on one listener, h2c. A
// nil *grpcServer is a verifier without gRPC: its methods do nothing.
type grpcServer struct {
	ln     net.Listener
	srv    *grpc.Server
	health *health.Server
	s      *Server
}

func newGRPCServer(addr string, s *Server, certs *certFiles) (*grpcServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-listen: %w", err)
	}
	opts := []grpc.ServerOption{
		// A connection without a check in flight for this long is closed
		// (GOAWAY, which Envoy's client handles by reconnecting), as the
		// HTTP listener's IdleTimeout closes an idle one: nobody holds
		// connections, and their buffers, open for nothing.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: grpcIdleTimeout}),
		// Envoy's cluster may keep its connection alive with pings
		// (http2_protocol_options.connection_keepalive, often 30s or
		// less), between checks too; grpc-go's default, one every 5
		// minutes with a stream open, answers those with GOAWAY
		// ENHANCE_YOUR_CALM.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	if certs != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(certs.tlsConfig())))
	}
	g := &grpcServer{ln: ln, srv: grpc.NewServer(opts...), health: health.NewServer(), s: s}
	authv3.RegisterAuthorizationServer(g.srv, &authorization{h: s.Handler})
	healthpb.RegisterHealthServer(g.srv, g.health)
	reflection.Register(g.srv)
	g.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	g.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	return g, nil
}

func (g *grpcServer) addr() string { return g.ln.Addr().String() }

// serve answers until stopped; health says SERVING once the store has
// synced, as /readyz does.
func (g *grpcServer) serve(ctx context.Context) {
	if g == nil {
		return
	}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if g.s.Ready() {
				g.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
				g.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	_ = g.srv.Serve(g.ln)
}

// notServing is the first step of a graceful stop: load balancers and
// gateways that watch health stop sending.
func (g *grpcServer) notServing() {
	if g != nil {
		g.health.Shutdown()
	}
}

// stop lets the checks in flight finish, until ctx ends.
func (g *grpcServer) stop(ctx context.Context) {
	if g == nil {
		return
	}
	done := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.srv.Stop()
	}
}
