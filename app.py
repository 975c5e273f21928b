"""CNN Classroom home page: the path through the course, what is ready to use, and the best models so far.

Run with `streamlit run app.py`. This page imports neither TensorFlow nor numpy, and it is short, so it opens in a
blink: what each dataset is and how to get a missing one is on the Datasets page, every model on the Models page.
"""

import streamlit as st

from core import server, ui
from core.catalogue import course_datasets, list_datasets
from core.guide import best_by_dataset, no_better_than_guessing, one_mistake_note, ready_summary
from core.tables import markdown_table

ui.page_setup("Home", icon=None)  # the tab's icon is set last, see the end
st.title("🧠 CNN Classroom")
st.markdown(
    "Learn image classification by doing: train real Keras networks on real images, watch them learn, "
    "look inside them, and test them on your own photos. Every model you train is kept, so coming back to "
    "a setting is instant and any two models can be compared."
)

with ui.guard():
    cards = ui.registry().list_entries(order_by="test_accuracy")
    active_jobs = ui.runner().active_jobs()
datasets = list_datasets(ui.registry().root, ask_network=False)  # what is on this machine; the Datasets page asks
courses = course_datasets(ui.registry().root)

path_column, ready_column = st.columns([3, 2])
with path_column:
    st.subheader("Your path through the course")
    st.caption("The lessons in order, each with about how long it takes a student. Then experiment on your own.")
    for number, (path, label, caption) in enumerate(ui.LESSONS + ui.EXPERIMENTS[:3], start=1):
        minutes = ui.LESSON_MINUTES.get(path)
        st.page_link(path, label=f"{number}. {label} — {caption}" + (f" (about {minutes} min)" if minutes else ""))
with ready_column:
    st.subheader("Ready to use")
    st.markdown(ready_summary(cards, datasets, courses, len(active_jobs)))
    if not cards:
        st.info("No models yet: the lessons train their own as you go (on **Compare**, one click trains the classic "
                "DNN and CNN), or the teacher runs `python -m core warmup` before class.")
    st.page_link("pages/2_Datasets.py", label="Datasets — what each is; how to get the others")
    st.page_link("pages/11_Models.py", label="Models — the registry: browse, download, import, delete")

best = best_by_dataset(cards)
if best:
    st.subheader("Best models, dataset by dataset")
    st.caption("Accuracies are only comparable on the same test images: each dataset is ranked on its own, and the "
               f"number of test images says how far one accuracy can be trusted ({one_mistake_note(best)}).")
    for title, ranked in best.items():  # two columns: with four, a phone gave a model's title 75 px, 30 lines
        st.markdown(f"**{title}**\n\n" + markdown_table(
            [{"test accuracy": f"{card.test_accuracy:.2%} of {card.dataset.test_images or 0:,} test images"
                               + (" (no better than guessing)" if no_better_than_guessing(card) else ""),
              "model (parameters)": f"{card.title} ({card.params.total:,})"} for card in ranked]))
ui.preload_in_background()  # what the heavier pages need, loaded while the student reads this page
ui.load_element_scripts_early(*server.LESSON_SCRIPTS)  # the lessons' inputs, charts, tables…, once this page is drawn
if ui.tab_icon_is_free():  # a fresh server's first run leaves Streamlit's icon: its emoji table is read later
    st.set_page_config(page_icon=ui.PAGE_ICON)
