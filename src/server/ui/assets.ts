/**
 * The UI's CSS and its small script, served by acc server itself (/ui/assets/...): no CDN,
 * nothing fetched from outside. The script only enhances: every page reads the same without it.
 */

// Colours checked for WCAG AA contrast (4.5:1 or more) against their backgrounds.
export const CSS = `
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:16px;line-height:1.5;color:#1b1f24;background:#fff}
body{margin:0}
a{color:#0645ad}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #b35900;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem;z-index:9}
.skip:focus{left:.5rem}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.5rem 1rem;background:#1b2a3a;color:#fff}
header a{color:#fff}
.brand{font-weight:700;font-size:1.2rem;text-decoration:none}
nav{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;flex:1}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0;flex:1}
nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
.signout{display:flex;align-items:center;gap:.5rem;margin:0}
.who{font-size:.9rem;color:#e6edf3}
main{max-width:72rem;margin:0 auto;padding:1rem}
main:focus{outline:none}
h1{font-size:1.5rem;margin:.5rem 0 1rem;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top;overflow-wrap:break-word}
th{background:#f3f5f7}
.scroll{overflow-x:auto}
dl.facts{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.25rem 1rem;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:break-word}
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.85rem;font-weight:600;border:1px solid currentColor}
.badge.running{color:#116329;background:#dafbe1}
.badge.stopped{color:#424a53;background:#eaeef2}
.badge.starting,.badge.stopping,.badge.creating,.badge.destroying{color:#7d4e00;background:#fff8c5}
.badge.failed{color:#a40e26;background:#ffebe9}
.badge.suspended{color:#5a32a3;background:#fbefff}
form{margin:0}
form.inline{display:inline-block;margin:.2rem .3rem .2rem 0}
fieldset{border:1px solid #d0d7de;padding:.75rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
.hint{font-weight:400;color:#57606a;font-size:.9rem}
input,select,button{font:inherit;padding:.4rem .6rem;border:1px solid #57606a;border-radius:4px;max-width:100%}
input[type=text],input[type=password],input[type=email],input[type=number],input[type=search]{width:24rem}
input[type=checkbox]{width:auto}
button{background:#0b57d0;color:#fff;border-color:#0b57d0;cursor:pointer}
button.danger{background:#a40e26;border-color:#a40e26}
button[disabled]{background:#8c959f;border-color:#8c959f;cursor:not-allowed}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin-bottom:1rem}
.filters label{margin:0}
.pager{display:flex;gap:1rem;margin:1rem 0}
.flash{padding:.5rem 1rem;border-radius:4px;margin-bottom:1rem;border:1px solid}
.flash.ok{background:#dafbe1;border-color:#116329}
.flash.error{background:#ffebe9;border-color:#a40e26}
.flash p{margin:0}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.5rem;overflow:auto;white-space:pre-wrap;overflow-wrap:break-word;max-height:28rem;font-size:.85rem}
.actions{margin:.5rem 0 1rem}
.muted{color:#57606a}
@media (max-width:40rem){
 input[type=text],input[type=password],input[type=email],input[type=number],input[type=search]{width:100%}
 dl.facts{grid-template-columns:1fr}
 dl.facts dd{margin-bottom:.5rem}
 table.cards thead{position:absolute;left:-999px}
 table.cards tr{display:block;border-bottom:2px solid #d0d7de;padding:.25rem 0}
 table.cards td{display:block;border:0;padding:.1rem .25rem}
 table.cards td[data-label]::before{content:attr(data-label) ": ";font-weight:600}
}
`;

// Live updates: every element with data-live and an id is refreshed from the same page every
// few seconds (the server's escaped HTML, parsed, never a string put together here); a log
// tail reads server-sent events as text (textContent: nothing in a log is markup).
export const JS = `
(function(){
"use strict";
var live=document.querySelectorAll("[data-live][id]");
if(live.length>0){
 setInterval(function(){
  if(document.hidden)return;
  fetch(location.href,{credentials:"same-origin",cache:"no-store"}).then(function(r){
   if(!r.ok)return null;return r.text();
  }).then(function(text){
   if(text===null)return;
   var doc=new DOMParser().parseFromString(text,"text/html");
   live.forEach(function(el){
    if(el.contains(document.activeElement))return;
    var fresh=doc.getElementById(el.id);
    if(fresh&&fresh.innerHTML!==el.innerHTML)el.innerHTML=fresh.innerHTML;
   });
  }).catch(function(){});
 },3000);
}
var log=document.querySelector("pre[data-stream]");
if(log&&window.EventSource){
 var source=new EventSource(log.getAttribute("data-stream"));
 source.onmessage=function(m){
  try{var e=JSON.parse(m.data);}catch(x){return;}
  if(typeof e.text!=="string")return;
  var stick=log.scrollTop+log.clientHeight>=log.scrollHeight-4;
  log.textContent=(log.textContent+e.text).slice(-200000);
  if(stick)log.scrollTop=log.scrollHeight;
 };
 log.setAttribute("data-following","1");
}
document.querySelectorAll("form[data-confirm]").forEach(function(form){
 var want=form.getAttribute("data-confirm");
 var input=form.querySelector("input[name=confirm]");
 var button=form.querySelector("button[type=submit]");
 if(!input||!button)return;
 var check=function(){button.disabled=input.value!==want;};
 input.addEventListener("input",check);check();
});
})();
`;
