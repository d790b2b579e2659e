// A TLS client on Go's crypto/tls (standard library only), for interop tests: connects, prints the
// negotiated version and suite as JSON on the first line, then the origin's answer to GET path.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "host:port")
	name := flag.String("servername", "localhost", "SNI and verification name")
	caFile := flag.String("ca", "", "CA certificate PEM")
	maxV := flag.String("max", "1.3", "maximum version: 1.2 or 1.3")
	minV := flag.String("min", "1.2", "minimum version: 1.2 or 1.3")
	suite := flag.String("suite", "", "TLS 1.2 cipher suite id, e.g. 0xc02f (TLS 1.2 only)")
	path := flag.String("path", "/api/tls", "HTTP path")
	flag.Parse()

	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	versions := map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}
	cfg := &tls.Config{RootCAs: pool, ServerName: *name, MinVersion: versions[*minV], MaxVersion: versions[*maxV]}
	if *suite != "" {
		id, err := strconv.ParseUint(*suite, 0, 16)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		cfg.CipherSuites = []uint16{uint16(id)}
	}
	conn, err := tls.Dial("tcp", *addr, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		os.Exit(1)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	vname := map[uint16]string{tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3"}[st.Version]
	line, _ := json.Marshal(map[string]string{"version": vname, "suite": tls.CipherSuiteName(st.CipherSuite)})
	fmt.Println(string(line))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", *path, *name)
	body, _ := io.ReadAll(conn)
	os.Stdout.Write(body)
}
