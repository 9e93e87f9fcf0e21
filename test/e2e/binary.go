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

// Package e2e holds the end-to-end test harness: a real nginx configured the
// way ingress-nginx configures a location with the
// nginx.ingress.kubernetes.io/auth-url and auth-response-headers annotations,
// in front of an upstream, with its auth subrequests going to a verifier.
//
// The nginx binary comes from NginxBinary: $KEYWARD_NGINX if set, else
// whatever hack/nginx.sh provides (the system's nginx if it has the
// auth_request module, else Debian's package unpacked under bin/nginx/).
package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// modulePath is the module whose root holds hack/nginx.sh.
const modulePath = "github.com/keyward/keyward"

// EnvNginx names the environment variable that, when set, is the nginx binary
// to use instead of asking hack/nginx.sh.
const EnvNginx = "KEYWARD_NGINX"

var binary struct {
	sync.Mutex
	path string
}

// NginxBinary returns the path of an nginx binary with the auth_request
// module: $KEYWARD_NGINX if set, else the path printed by <repo>/hack/nginx.sh
// (which may download Debian's package on first use; later calls are cached).
// The repository root is found by walking up from the working directory to the
// go.mod of module github.com/keyward/keyward.
func NginxBinary() (string, error) {
	if p := os.Getenv(EnvNginx); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvNginx, p, err)
		}
		return p, nil
	}

	binary.Lock()
	defer binary.Unlock()
	if binary.path != "" {
		return binary.path, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "hack", "nginx.sh")
	cmd := exec.Command(script)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	p := strings.TrimSpace(stdout.String())
	if p == "" {
		return "", fmt.Errorf("%s printed no path: %s", script, strings.TrimSpace(stderr.String()))
	}
	binary.path = p
	return p, nil
}

// repoRoot walks up from the working directory to the directory whose go.mod
// declares modulePath.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module " + modulePath + " above the working directory; set " + EnvNginx)
		}
		dir = parent
	}
}

// isModuleRoot reports whether the go.mod at path declares modulePath.
func isModuleRoot(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}
