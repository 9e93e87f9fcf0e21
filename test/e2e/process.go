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

package e2e

import (
	"errors"
	"fmt"
)

// StartNginxProcess is StartNginx for programs that are not tests, such as
// the benchmarks under test/bench: the configuration, logs and temporary
// files go to dir (which must exist and stay until nginx stops), errors are
// returned, and the caller stops nginx with Stop.
func StartNginxProcess(dir string, opts NginxOptions) (*Nginx, error) {
	bin, err := NginxBinary()
	if err != nil {
		return nil, fmt.Errorf("e2e: no nginx: %w", err)
	}
	var n *Nginx
	// As in StartNginx: the port may be taken between choosing and binding.
	for attempt := 1; ; attempt++ {
		n, err = startNginx(bin, dir, opts)
		if err == nil || attempt == 3 || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("e2e: %w", err)
	}
	return n, nil
}
