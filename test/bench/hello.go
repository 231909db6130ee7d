package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// helloBody is what the hello server answers: a small JSON reply, as the services' are.
var helloBody = []byte(`{"success":true,"commodity":{"id":1,"name":"hello","count":10,"sale":0}}` + "\n")

// serveHello is the bench started as the hello server (-serve-hello ADDR): a plain net/http
// server in a process of its own, the machine's ceiling for an HTTP service with this
// client. It prints "listening ADDR" once it listens, and serves until killed.
func serveHello(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(helloBody)
	}), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// startHello starts this program again as the hello server and returns its address and a
// stop function.
func startHello(ctx context.Context) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve-hello", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("hello server: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		stop()
		return "", nil, fmt.Errorf("hello server said %q", line)
	}
	return addr, stop, nil
}
