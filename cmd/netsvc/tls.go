package main

// The TLS flags the client commands share, loaded into the exchange's
// TLS settings.

import (
	"crypto/tls"
	"errors"
	"flag"
	"os"

	"github.com/netsvc-go/netsvc/actors/exchange"
)

// tlsFlags are the TLS flags of the node and of the client commands.
//
// A node with --tls-cert and --tls-key serves TLS on its exchange
// listener and dials its peers (gossip-found and --connect) with TLS,
// presenting the same certificate; with --tls-ca it verifies peers
// against that CA and requires every peer and client to present a
// certificate it signed (mutual TLS). A client command uses TLS when
// given --tls-ca (the CA its server's certificate is verified against)
// or --tls-cert and --tls-key (its certificate, for a node with mutual
// TLS); it checks the certificate names the host of --server, or
// --tls-server-name.
type tlsFlags struct {
	cert, key, ca string
	serverName    string // clients only
}

func (f *tlsFlags) register(fs *flag.FlagSet, client bool) {
	if client {
		// Defaults from the environment, as --server's: a flag given wins.
		fs.StringVar(&f.cert, "tls-cert", os.Getenv("NETSVC_TLS_CERT"), "client certificate `FILE` (PEM), for a node with mutual TLS; needs --tls-key (default NETSVC_TLS_CERT)")
		fs.StringVar(&f.key, "tls-key", os.Getenv("NETSVC_TLS_KEY"), "private key `FILE` (PEM) of --tls-cert (default NETSVC_TLS_KEY)")
		fs.StringVar(&f.ca, "tls-ca", os.Getenv("NETSVC_TLS_CA"), "link with TLS, verifying the node's certificate against the CA in `FILE` (PEM) (default NETSVC_TLS_CA)")
		fs.StringVar(&f.serverName, "tls-server-name", os.Getenv("NETSVC_TLS_SERVER_NAME"), "the `NAME` the node's certificate must hold (default NETSVC_TLS_SERVER_NAME, else the host of --server)")
		return
	}
	fs.StringVar(&f.cert, "tls-cert", "", "serve and dial peers with TLS, presenting the certificate in `FILE` (PEM); needs --tls-key")
	fs.StringVar(&f.key, "tls-key", "", "private key `FILE` (PEM) of --tls-cert")
	fs.StringVar(&f.ca, "tls-ca", "", "verify peers against the CA in `FILE` (PEM) and require their certificates (mutual TLS)")
}

// validate checks the combination; it reads no file.
func (f *tlsFlags) validate(client bool) error {
	switch {
	case f.cert != "" && f.key == "":
		return errors.New("--tls-cert needs --tls-key")
	case f.key != "" && f.cert == "":
		return errors.New("--tls-key needs --tls-cert")
	case !client && f.ca != "" && f.cert == "":
		return errors.New("--tls-ca needs --tls-cert and --tls-key: the node serves TLS with them")
	case client && f.serverName != "" && f.ca == "" && f.cert == "":
		return errors.New("--tls-server-name needs --tls-ca (or --tls-cert): it names the certificate TLS verifies")
	}
	return nil
}

// load reads the files: nil configs when TLS is off. Its error is one
// line naming the file.
func (f *tlsFlags) load() (server, client *tls.Config, err error) {
	server, client, err = exchange.TLSFiles{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}.Load()
	if err != nil {
		return nil, nil, err
	}
	if client != nil && f.serverName != "" {
		client.ServerName = f.serverName
	}
	return server, client, nil
}
