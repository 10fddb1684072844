// Command vspheresim serves govmomi's vSphere simulator for the exchange-ha rehearsal lab:
// an ESXi host (default) or a vCenter model over HTTPS with the lab CA's certificate, one
// user name and password, running until SIGTERM or SIGINT.
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vspheresim: "+format+"\n", args...)
	os.Exit(2)
}

// readPassword returns the first line of the file at path.
func readPassword(path string) string {
	f, err := os.Open(path)
	if err != nil {
		fail("--password-file: %v", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		fail("--password-file %s: empty; write the password on its first line", path)
	}
	return strings.TrimRight(line, "\r\n")
}

func main() {
	model := flag.String("model", "esx", "inventory model: esx (bare ESXi host) or vpx (vCenter)")
	listen := flag.String("listen", "127.0.0.1:443", "address:port to serve HTTPS on")
	certFile := flag.String("cert", "", "PEM server certificate")
	keyFile := flag.String("key", "", "PEM private key of the certificate")
	username := flag.String("username", "root", "the one user name that may log in")
	passwordFile := flag.String("password-file", "", "file whose first line is that user's password")
	flag.Parse()

	if *certFile == "" || *keyFile == "" || *passwordFile == "" {
		fail("--cert, --key and --password-file are required")
	}
	pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("--cert/--key: %v", err)
	}
	password := readPassword(*passwordFile)

	var m *simulator.Model
	switch *model {
	case "esx":
		m = simulator.ESX()
	case "vpx":
		m = simulator.VPX()
	default:
		fail("--model: expected esx or vpx, got %q", *model)
	}
	defer m.Remove()
	if err := m.Create(); err != nil {
		fail("creating the %s model: %v", *model, err)
	}

	m.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, password)}
	m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	server := m.Service.NewServer()
	defer server.Close()

	shown := *server.URL
	shown.User = nil
	fmt.Printf("vspheresim: %s model serving %s\n", *model, shown.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	sig := <-stop
	fmt.Printf("vspheresim: %v, stopping\n", sig)
}
