//go:build !faultinject

package svc

import "go-micro.dev/v6/server"

// faultOptions is empty: fault injection is only compiled into test builds (see
// fault_inject.go).
func faultOptions() []server.Option { return nil }
