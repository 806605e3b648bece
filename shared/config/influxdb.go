package config

import (
	"errors"
	"strings"
	"time"
)

// InfluxDB is where Telegraf's pod metrics are read from. InfluxDB 1.8 (Flux enabled) is the
// reference; 2.x works through INFLUXDB_TOKEN and INFLUXDB_ORG.
type InfluxDB struct {
	URL             string        `env:"INFLUXDB_URL" envDefault:"http://localhost:8086" desc:"InfluxDB base URL (http or https)"`
	Database        string        `env:"INFLUXDB_DATABASE" envDefault:"k3s_telegraf_ds" desc:"database Telegraf writes to (1.8)"`
	RetentionPolicy string        `env:"INFLUXDB_RETENTION_POLICY" envDefault:"autogen" desc:"retention policy of that database (1.8)"`
	Bucket          string        `env:"INFLUXDB_BUCKET" desc:"Flux bucket; empty means <database>/<retention policy>, the 1.8 compatibility name"`
	Username        string        `env:"INFLUXDB_USERNAME" desc:"user with read access (1.8 authentication); empty for none"`
	Password        Secret        `env:"INFLUXDB_PASSWORD" secret:"true" desc:"password of INFLUXDB_USERNAME"`
	Token           Secret        `env:"INFLUXDB_TOKEN" secret:"true" desc:"API token (2.x); replaces username and password"`
	Org             string        `env:"INFLUXDB_ORG" desc:"organization (2.x, required with INFLUXDB_TOKEN)"`
	Timeout         time.Duration `env:"INFLUXDB_TIMEOUT" envDefault:"30s" desc:"limit for one HTTP request to InfluxDB, including a streamed query result"`
}

// FluxBucket is the bucket for Flux's from(): INFLUXDB_BUCKET if set, otherwise
// "<database>/<retention policy>", which InfluxDB 1.8 maps to that database and policy (and which
// is also the bucket name `influxd upgrade` gives a 1.x database moved to 2.x).
func (c InfluxDB) FluxBucket() string {
	if c.Bucket != "" {
		return c.Bucket
	}
	if c.RetentionPolicy == "" {
		return c.Database
	}
	return c.Database + "/" + c.RetentionPolicy
}

// AuthToken is the value for InfluxDB's "Authorization: Token ..." header: INFLUXDB_TOKEN for
// 2.x, "username:password" for 1.8, or "" without authentication.
func (c InfluxDB) AuthToken() string {
	switch {
	case c.Token != "":
		return c.Token.Reveal()
	case c.Username != "":
		return c.Username + ":" + c.Password.Reveal()
	}
	return ""
}

// Validate checks the values; errors name the variable and its value.
func (c InfluxDB) Validate() error {
	var errs []error
	if err := validateHTTPURL(c.URL); err != nil {
		errs = append(errs, &VarError{Var: "INFLUXDB_URL", Value: maskURL(c.URL), Err: err})
	}
	if c.Bucket == "" {
		if c.Database == "" {
			errs = append(errs, Invalid("INFLUXDB_DATABASE", c.Database, "required unless INFLUXDB_BUCKET is set"))
		}
		// The 1.8 compatibility API splits the bucket at the first "/".
		if strings.Contains(c.Database, "/") {
			errs = append(errs, Invalid("INFLUXDB_DATABASE", c.Database, `must not contain "/"`))
		}
	}
	switch {
	case c.Token != "" && c.Username != "":
		errs = append(errs, Invalid("INFLUXDB_USERNAME", c.Username, "set either INFLUXDB_TOKEN (2.x) or INFLUXDB_USERNAME/INFLUXDB_PASSWORD (1.8), not both"))
	case c.Token != "" && c.Org == "":
		errs = append(errs, Invalid("INFLUXDB_ORG", c.Org, "required with INFLUXDB_TOKEN"))
	case c.Username != "" && c.Password == "":
		errs = append(errs, Invalid("INFLUXDB_PASSWORD", "", "required with INFLUXDB_USERNAME"))
	case c.Username == "" && c.Password != "":
		errs = append(errs, Invalid("INFLUXDB_USERNAME", "", "required with INFLUXDB_PASSWORD"))
	}
	// InfluxDB 1.8 splits "user:password" tokens at the first colon.
	if strings.Contains(c.Username, ":") {
		errs = append(errs, Invalid("INFLUXDB_USERNAME", c.Username, `must not contain ":"`))
	}
	if c.Timeout <= 0 {
		errs = append(errs, Invalid("INFLUXDB_TIMEOUT", c.Timeout.String(), "must be positive"))
	}
	return errors.Join(errs...)
}

func validateHTTPURL(s string) error {
	u, err := ParseHTTPURL(s)
	switch {
	case err != nil:
		return err
	case u.User != nil:
		return errors.New("credentials belong in INFLUXDB_USERNAME/INFLUXDB_PASSWORD or INFLUXDB_TOKEN, not in the URL")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	return nil
}
