// The app object: holds the login state the certify page sends as a bearer token.
//
// globalData.token stays null for the demo: `make demo` runs the backend in sandbox mode with
// ALICERTIFY_ALLOW_ANONYMOUS, so anonymous callers are accepted and a demo user is used. To
// try the token path, POST {"username": "alice"} to http://127.0.0.1:5000/login and put the
// returned token here (or in onLaunch below).
//
// A real app logs in with Alipay instead of a demo username:
//
//   my.getAuthCode({
//     scopes: 'auth_base',                       // silent; 'auth_user' shows a consent sheet
//     success: ({ authCode }) => {
//       my.request({
//         url: 'https://api.example.com/login/alipay',   // your backend
//         method: 'POST',
//         headers: { 'content-type': 'application/json' },
//         data: { authCode },
//         success: (res) => { this.globalData.token = res.data.token; },
//       });
//     },
//   });
//
// The backend exchanges the authCode with Alipay's alipay.system.oauth.token API (signed with the
// app's private key, server side only) for the user's Alipay user id, finds or creates the user,
// and answers with its own session token. The certify page then sends
// `Authorization: Bearer <token>`, and the backend's @certify.user_loader maps it to the user.
App({
  globalData: {
    token: null,
  },
  onLaunch() {},
});
