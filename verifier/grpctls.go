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
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// certFiles serves a TLS certificate from a certificate and a key file,
// read again when the certificate file changes (cert-manager renews a
// mounted Secret in place): each new connection gets the current one.
type certFiles struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

// newCertFiles checks that both files are named and load.
func newCertFiles(certFile, keyFile string) (*certFiles, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--grpc-tls-cert-file and --grpc-tls-key-file go together: set both for TLS, or neither for h2c")
	}
	c := &certFiles{certFile: certFile, keyFile: keyFile}
	if _, err := c.get(nil); err != nil {
		return nil, err
	}
	return c, nil
}

// get is tls.Config.GetCertificate.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := os.Stat(c.certFile)
	if err != nil {
		return nil, fmt.Errorf("--grpc-tls-cert-file: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && st.ModTime().Equal(c.modTime) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // half-written: the last good one until both are
		}
		return nil, fmt.Errorf("--grpc-tls-cert-file, --grpc-tls-key-file: %w", err)
	}
	c.cert, c.modTime = &cert, st.ModTime()
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least, HTTP/2.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"h2"}}
}
