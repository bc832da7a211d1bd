//! `mock-mcp`: the test MCP server as a program. With no argument it speaks stdio; with
//! `--http` it serves Streamable HTTP on 127.0.0.1 (an ephemeral port) and prints its URL.

fn main() {
    if std::env::args().any(|a| a == "--http") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else {
            eprintln!("mock-mcp: cannot start a runtime");
            std::process::exit(1);
        };
        runtime.block_on(async {
            match mock_mcp::MockMcp::start("http").await {
                Ok(server) => {
                    println!("{}", server.url());
                    std::future::pending::<()>().await;
                }
                Err(e) => eprintln!("mock-mcp: {e}"),
            }
        });
    } else {
        mock_mcp::run_stdio("stdio");
    }
}
