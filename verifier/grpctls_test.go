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
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, to dir, and returns the certificate for a client to trust.
func writeCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tls.key", "EC PRIVATE KEY", kb)
	write("tls.crt", "CERTIFICATE", der)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestGRPCOverTLS serves Check over TLS from a certificate file, answers a
// client that trusts it, refuses a plaintext (h2c) client, and serves a
// renewed certificate written over the old files to the next connection.
func TestGRPCOverTLS(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	first := writeCert(t, dir, "first")
	certs, err := newCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGRPCServer("127.0.0.1:0", &Server{Store: f.store, Handler: f.handler}, certs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go g.serve(ctx)
	t.Cleanup(func() { cancel(); g.stop(context.Background()) })

	check := func(creds credentials.TransportCredentials) (*authv3.CheckResponse, error) {
		conn, err := grpc.NewClient(g.addr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return authv3.NewAuthorizationClient(conn).Check(c, checkRequest(grpcCheck{namespace: "iot", group: "devices", method: "GET", path: "/status",
			headers: map[string]string{"authorization": "Bearer " + f.keys["downlinker"]}}))
	}
	trusting := func(cert *x509.Certificate) credentials.TransportCredentials {
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		return credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	if resp, err := check(trusting(first)); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("over TLS: %v, %v", resp, err)
	}
	if _, err := check(insecure.NewCredentials()); err == nil {
		t.Error("a plaintext client was answered by the TLS server")
	}

	// Renewed in place, as cert-manager rewrites a mounted Secret.
	time.Sleep(10 * time.Millisecond) // a later modification time
	renewed := writeCert(t, dir, "renewed")
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(filepath.Join(dir, "tls.crt"), now, now); err != nil {
		t.Fatal(err)
	}
	if resp, err := check(trusting(renewed)); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("with the renewed certificate: %v, %v", resp, err)
	}
	if _, err := check(trusting(first)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the old certificate is still served: %v", err)
	}

	if _, err := newCertFiles(filepath.Join(dir, "tls.crt"), ""); err == nil || !strings.Contains(err.Error(), "--grpc-tls-key-file") {
		t.Errorf("a certificate without its key: %v", err)
	}
}
