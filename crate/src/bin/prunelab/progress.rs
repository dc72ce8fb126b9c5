//! Renders engine events in a terminal: a progress bar per epoch and one
//! summary line per epoch (or JSON lines with `--json-events`).

use indicatif::{ProgressBar, ProgressStyle};
use prunelab::base::events::{Event, Sink};

pub struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    steps_per_epoch: u64,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        Progress {
            json,
            bar: None,
            steps_per_epoch: 0,
        }
    }

    fn bar(&mut self, epoch: usize) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(self.steps_per_epoch);
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(epoch.to_string());
            bar
        })
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Sink for Progress {
    fn emit(&mut self, event: Event) {
        if self.json {
            println!("{}", serde_json::to_string(&event).expect("plain data"));
            return;
        }
        match event {
            Event::RunStarted {
                device,
                model,
                params,
                macs,
                epochs,
                steps_per_epoch,
            } => {
                self.steps_per_epoch = steps_per_epoch as u64;
                eprintln!(
                    "training {model} ({params} params, {macs} MACs) for {epochs} epochs on {device}"
                );
            }
            Event::Step {
                epoch,
                loss,
                accuracy,
                images_per_second,
                ..
            } => {
                let bar = self.bar(epoch);
                bar.inc(1);
                bar.set_message(format!(
                    "loss {loss:.4} acc {:.1}% {images_per_second:.0} img/s",
                    100.0 * accuracy
                ));
            }
            Event::Epoch(m) => {
                self.finish();
                eprintln!(
                    "epoch {:>3}: train loss {:.4} acc {:.2}% · test loss {:.4} acc {:.2}% · lr {:.4} · {:.1} s",
                    m.epoch,
                    m.train_loss,
                    100.0 * m.train_accuracy,
                    m.test_loss,
                    100.0 * m.test_accuracy,
                    m.lr,
                    m.seconds
                );
            }
            Event::Phase { name, detail } => eprintln!("{name}: {detail}"),
            Event::Notice { text } => eprintln!("note: {text}"),
        }
    }
}
