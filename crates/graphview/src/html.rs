//! A self-contained HTML page: the SVG inline, pan (drag) and zoom (wheel,
//! `+`/`-`, `0` to fit) and a panel showing a clicked node's attrs, in a
//! small inline script. Nothing is loaded from the network.

use serde_json::{Map, Value, json};

use crate::model::GraphView;
use crate::svg::{escape, svg};

const STYLE: &str = "\
html,body{margin:0;height:100%;font:13px system-ui,sans-serif;color:#222}
#bar{position:fixed;top:0;left:0;right:0;height:30px;padding:6px 10px;box-sizing:border-box;background:#f7f7f7;border-bottom:1px solid #ddd}
#view{position:fixed;top:30px;left:0;right:320px;bottom:0;overflow:hidden;cursor:grab;background:#fff}
#view svg{width:100%;height:100%}
#panel{position:fixed;top:30px;right:0;width:320px;bottom:0;overflow:auto;border-left:1px solid #ddd;padding:8px;box-sizing:border-box;background:#fafafa}
#panel table{border-collapse:collapse;width:100%}#panel td{border-bottom:1px solid #eee;padding:2px 4px;vertical-align:top;word-break:break-all}
g.node{cursor:pointer}g.node.selected rect{stroke:#000;stroke-width:3}";

const SCRIPT: &str = r#"
(function(){
  var data = JSON.parse(document.getElementById('graph-data').textContent);
  var view = document.getElementById('view');
  var svg = view.querySelector('svg');
  var full = svg.viewBox.baseVal;
  var box = {x: full.x, y: full.y, w: full.width, h: full.height};
  svg.removeAttribute('width'); svg.removeAttribute('height');
  function apply(){ svg.setAttribute('viewBox', box.x+' '+box.y+' '+box.w+' '+box.h); }
  function fit(){ box = {x: full.x, y: full.y, w: full.width, h: full.height}; apply(); }
  function zoom(f, cx, cy){
    var r = svg.getBoundingClientRect();
    var px = box.x + (cx - r.left) / r.width * box.w, py = box.y + (cy - r.top) / r.height * box.h;
    box.w *= f; box.h *= f; box.x = px - (px - box.x) * f; box.y = py - (py - box.y) * f; apply();
  }
  view.addEventListener('wheel', function(e){ e.preventDefault(); zoom(e.deltaY > 0 ? 1.15 : 1/1.15, e.clientX, e.clientY); }, {passive:false});
  var drag = null;
  view.addEventListener('mousedown', function(e){ drag = {x: e.clientX, y: e.clientY, bx: box.x, by: box.y}; view.style.cursor = 'grabbing'; });
  window.addEventListener('mouseup', function(){ drag = null; view.style.cursor = 'grab'; });
  window.addEventListener('mousemove', function(e){
    if (!drag) return;
    var r = svg.getBoundingClientRect();
    box.x = drag.bx - (e.clientX - drag.x) / r.width * box.w;
    box.y = drag.by - (e.clientY - drag.y) / r.height * box.h; apply();
  });
  window.addEventListener('keydown', function(e){
    var r = svg.getBoundingClientRect(), cx = r.left + r.width/2, cy = r.top + r.height/2;
    if (e.key === '+' || e.key === '=') zoom(1/1.25, cx, cy);
    else if (e.key === '-') zoom(1.25, cx, cy);
    else if (e.key === '0') fit();
  });
  var panel = document.getElementById('panel');
  function text(s){ return document.createTextNode(s); }
  function show(i){
    var n = data.nodes[i];
    var old = svg.querySelector('g.node.selected'); if (old) old.classList.remove('selected');
    document.getElementById('n'+i).classList.add('selected');
    panel.textContent = '';
    var h = document.createElement('h3'); h.appendChild(text(n.name)); panel.appendChild(h);
    var p = document.createElement('p'); p.appendChild(text(n.op)); panel.appendChild(p);
    var t = document.createElement('table');
    n.attrs.forEach(function(kv){
      var tr = document.createElement('tr'), a = document.createElement('td'), b = document.createElement('td');
      a.appendChild(text(kv[0])); b.appendChild(text(kv[1])); tr.appendChild(a); tr.appendChild(b); t.appendChild(tr);
    });
    panel.appendChild(t);
  }
  svg.querySelectorAll('g.node').forEach(function(g){
    g.addEventListener('click', function(e){ e.stopPropagation(); show(parseInt(g.id.slice(1), 10)); });
  });
})();
"#;

/// The view as one HTML file with everything inline.
pub fn html(view: &GraphView) -> String {
    let nodes: Vec<Value> = view
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name,
                "op": n.op,
                "attrs": n.attrs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut data = Map::new();
    data.insert("title".to_owned(), Value::from(view.title.clone()));
    data.insert("nodes".to_owned(), Value::from(nodes));
    // `</script` or `<!--` inside a script element would end or change it:
    // no `<` at all (it only occurs inside JSON strings, where `\u003c` is
    // the same character).
    let data = Value::Object(data).to_string().replace('<', "\\u003c");
    let title = escape(&view.title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n\
         <div id=\"bar\"><b>{title}</b> &#8212; {count} nodes. Drag to pan, wheel or +/- to zoom, 0 to fit, click a node for its attrs.</div>\n\
         <div id=\"view\">\n{svg}</div>\n<div id=\"panel\">Click a node.</div>\n\
         <script type=\"application/json\" id=\"graph-data\">{data}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        count = view.nodes.len(),
        svg = svg(view),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeKind, ViewNode};

    #[test]
    fn node_text_cannot_end_the_scripts() {
        let view = GraphView {
            nodes: vec![ViewNode {
                name: "a</script><!--".to_owned(),
                op: "Const".to_owned(),
                kind: NodeKind::Op,
                attrs: vec![("s".to_owned(), "\"</script>\"".to_owned())],
            }],
            edges: Vec::new(),
            title: "t".to_owned(),
        };
        let page = html(&view);
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(!page.contains("<!--"));
        assert!(page.contains("a\\u003c/script>"));
    }
}
