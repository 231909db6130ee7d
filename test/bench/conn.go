package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// request is one prepared request: everything in it is built before the run (URL parsed,
// request line and body written out, bearer header formatted), so sending it costs a copy.
type request struct {
	method string
	url    *url.URL
	head   []byte // "METHOD /uri HTTP/1.1\r\nHost: host\r\n"
	tail   []byte // content headers, the blank line and the body
	body   []byte
	bearer string // "Bearer <token>", or "" for none
	key    string // Idempotency-Key, or "" for none
	user   int64
	// ticket, for a buy of a commodity that requires one, is the GET /order/ticket sent
	// first, with the same bearer; sid is the commodity (see worker.withTicket).
	ticket *request
	sid    int64
}

// newRequest prepares a request to rawURL with body (nil: none). The parts are shared
// read-only by every copy of the request.
func newRequest(method, rawURL string, body []byte) (request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return request{}, err
	}
	r := request{method: method, url: u, body: body}
	r.head = fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	if body != nil {
		r.tail = fmt.Appendf(nil, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		r.tail = append(r.tail, body...)
	} else {
		r.tail = []byte("\r\n")
	}
	return r, nil
}

// conn is one connection of the load client: it sends a request and waits for the whole
// answer before it sends the next.
type conn interface {
	// do sends req and returns the status and the body, which is valid until the next do.
	do(req *request) (int, []byte, error)
	close()
}

// timeout bounds one request on a raw connection.
const timeout = 60 * time.Second

// rawConn speaks just enough HTTP/1.1 over one kept-alive TCP connection: the request is
// one write of prepared bytes, the answer is read by Content-Length (or chunks). net/http's
// client spends about three times the CPU per request (its two goroutines per connection
// and their hand-offs); on a 2-core machine shared with the services, that cost would be
// measured as the services' slowness.
type rawConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	body []byte
}

func newRawConn() *rawConn {
	return &rawConn{wbuf: make([]byte, 0, 1024), body: make([]byte, 0, 4096)}
}

// dial connects to addr unless already connected there.
func (r *rawConn) dial(addr string) error {
	if r.c != nil && r.addr == addr {
		return nil
	}
	r.close()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	r.c, r.addr = c, addr
	if r.br == nil {
		r.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		r.br.Reset(c)
	}
	return nil
}

func (r *rawConn) close() {
	if r.c != nil {
		r.c.Close()
		r.c = nil
	}
}

func (r *rawConn) do(req *request) (int, []byte, error) {
	status, body, keep, err := r.roundTrip(req)
	if err != nil || !keep {
		// The connection's state is unknown (or the server is closing it): a new one
		// next time. The request is not resent here: a buy may have been done.
		r.close()
	}
	return status, body, err
}

func (r *rawConn) roundTrip(req *request) (status int, body []byte, keep bool, err error) {
	if err := r.dial(req.url.Host); err != nil {
		return 0, nil, false, err
	}
	w := append(r.wbuf[:0], req.head...)
	if req.bearer != "" {
		w = append(w, "Authorization: "...)
		w = append(w, req.bearer...)
		w = append(w, "\r\n"...)
	}
	if req.key != "" {
		w = append(w, "Idempotency-Key: "...)
		w = append(w, req.key...)
		w = append(w, "\r\n"...)
	}
	w = append(w, req.tail...)
	r.wbuf = w
	if err := r.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, nil, false, err
	}
	if _, err := r.c.Write(w); err != nil {
		return 0, nil, false, err
	}

	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := -1, false, line[7] == '1'
	for {
		h, err := r.br.ReadSlice('\n')
		if err != nil {
			return status, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, nil, false, fmt.Errorf("bad header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return status, nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = keep && !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		body, err = r.readChunked()
	case length >= 0:
		body, err = r.readN(r.body[:0], length)
	default: // the body runs to the end of the connection
		r.body = r.body[:0]
		buf := bytes.NewBuffer(r.body)
		_, err = buf.ReadFrom(r.br)
		body, keep = buf.Bytes(), false
	}
	if err != nil {
		return status, nil, false, err
	}
	r.body = body[:0]
	return status, body, keep, nil
}

// readN appends n bytes of the body to dst.
func (r *rawConn) readN(dst []byte, n int) ([]byte, error) {
	if cap(dst)-len(dst) < n {
		dst = append(make([]byte, 0, len(dst)+n), dst...)
	}
	start := len(dst)
	dst = dst[:start+n]
	if _, err := io.ReadFull(r.br, dst[start:]); err != nil {
		return nil, err
	}
	return dst, nil
}

// readChunked reads a chunked body (Go's servers use it only for large or flushed replies).
func (r *rawConn) readChunked() ([]byte, error) {
	body := r.body[:0]
	for {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, if any, then the blank line.
			for {
				t, err := r.br.ReadSlice('\n')
				if err != nil {
					return nil, err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return body, nil
				}
			}
		}
		if body, err = r.readN(body, int(n)); err != nil {
			return nil, err
		}
		var crlf [2]byte
		if _, err := io.ReadFull(r.br, crlf[:]); err != nil {
			return nil, err
		}
		if crlf != [2]byte{'\r', '\n'} {
			return nil, errors.New("chunk not followed by CRLF")
		}
	}
}

// httpConn sends through a shared net/http client (load.Client), for comparison.
type httpConn struct {
	c   *http.Client
	buf bytes.Buffer
}

func (h *httpConn) do(req *request) (int, []byte, error) {
	hdr := make(http.Header, 4)
	if req.bearer != "" {
		hdr["Authorization"] = []string{req.bearer}
	}
	if req.key != "" {
		hdr["Idempotency-Key"] = []string{req.key}
	}
	hr := &http.Request{Method: req.method, URL: req.url, Host: req.url.Host, Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if req.body != nil {
		hdr["Content-Type"] = []string{"application/json"}
		hr.ContentLength = int64(len(req.body))
		hr.Body = io.NopCloser(bytes.NewReader(req.body))
	}
	rsp, err := h.c.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer rsp.Body.Close()
	h.buf.Reset()
	if _, err := h.buf.ReadFrom(rsp.Body); err != nil {
		return rsp.StatusCode, nil, err
	}
	return rsp.StatusCode, h.buf.Bytes(), nil
}

func (h *httpConn) close() {}
