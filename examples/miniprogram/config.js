// Where the mini-program finds the Flask backend that runs flask-alicertify.
//
// `baseUrl` is the extension's blueprint: {origin}{ALICERTIFY_URL_PREFIX}. The default is the
// demo served by `make demo` (examples/backend in sandbox mode). On a phone or in the Alipay
// developer tool, replace 127.0.0.1 with an address the device can reach (and set the backend's
// SERVER_NAME to it, so certifyUrl is an absolute URL on it), and for a released
// mini-program use an https origin listed in the console's 服务器域名白名单 (server domain allowlist).
//
// CommonJS on purpose: the Alipay runtime and Node (tests/clients/node/harness.js) both load it.
module.exports = {
  // The extension's endpoints: POST {baseUrl}/init, POST {baseUrl}/result, GET {baseUrl}/result/<id>.
  baseUrl: 'http://127.0.0.1:5000/alicertify',
  // Sent as serviceParameters.returnUrl when set. Left out by default: in a mini-program the
  // open-certify callback brings the user back, and the server only accepts return URLs on
  // hosts it allows (ALICERTIFY_RETURN_URL_HOSTS), so a fixed value belongs in the server config.
  returnUrl: null,
  // my.request timeout in milliseconds.
  timeout: 15000,
};
